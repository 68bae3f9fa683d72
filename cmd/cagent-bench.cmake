add_executable(cagent-bench ${CMAKE_CURRENT_LIST_DIR}/cagent-bench.cpp)
target_link_libraries(cagent-bench PRIVATE cagent_bench cagent_nft cagent_warnings)
