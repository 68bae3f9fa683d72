add_executable(dnsguard ${CMAKE_CURRENT_LIST_DIR}/dnsguard.cpp)
target_link_libraries(dnsguard PRIVATE cagent_dnsguard cagent_nft cagent_warnings)
