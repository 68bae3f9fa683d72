add_executable(dnsguard ${CMAKE_CURRENT_LIST_DIR}/dnsguard.cpp)
target_link_libraries(dnsguard PRIVATE cagent_nft_sink cagent_warnings)
