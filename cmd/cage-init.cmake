# cage-init: the cage's entrypoint (see launcher/cage/README.md).
add_executable(cage-init ${CMAKE_CURRENT_LIST_DIR}/cage-init.cpp)
target_link_libraries(cage-init PRIVATE cagent_launcher_cage cagent_warnings)
