# cagent-relay: the secret relay (see launcher/relay/relay.hpp).
add_executable(cagent-relay ${CMAKE_CURRENT_LIST_DIR}/cagent-relay.cpp)
target_link_libraries(cagent-relay PRIVATE cagent_relay cagent_warnings)
# GCC 12's -Wnull-dereference false positive inside Asio (see dnsguard/CMakeLists.txt).
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/cagent-relay.cpp PROPERTIES COMPILE_OPTIONS -Wno-null-dereference)
