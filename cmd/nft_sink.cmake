# The nft-backed AnswerSink (see nft_sink.hpp for why it lives here): the one
# library that links both dnsguard/ and nft/. Only cmd/dnsguard and its unit
# tests use it.
add_library(cagent_nft_sink STATIC ${CMAKE_CURRENT_LIST_DIR}/nft_sink.cpp)
target_include_directories(cagent_nft_sink PUBLIC ${CAGENT_SOURCE_ROOT})
target_link_libraries(cagent_nft_sink PUBLIC cagent_dnsguard cagent_nft PRIVATE cagent_warnings)
