# cagent — the host command. Logic lives in launcher/host (cagent_launcher_host).
add_executable(cagent ${CMAKE_CURRENT_LIST_DIR}/cagent.cpp)
target_link_libraries(cagent PRIVATE cagent_launcher_host cagent_warnings)

# Build-tree marker: bin/cagent-source-root names the checkout, so cagent run
# from the build tree builds its image from these sources (see
# launcher/host/image.hpp, find_image_context). Not installed.
file(WRITE ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/cagent-source-root "${CAGENT_SOURCE_ROOT}\n")

# Installed layout: bin/cagent and the image context under
# ${CAGENT_DATA_DIR}/context (share/cagent/context): the Dockerfile, the
# sources the image build compiles, and the .dockerignore. The builder stage
# configures the whole project with CAGENT_TESTS=OFF, so every folder the
# top-level CMakeLists adds is needed; tests/ and build trees are not.
install(TARGETS cagent RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
set(cagent_context_dest ${CMAKE_INSTALL_DATADIR}/cagent/context)
install(FILES
  ${CAGENT_SOURCE_ROOT}/CMakeLists.txt
  ${CAGENT_SOURCE_ROOT}/config-default.yaml
  DESTINATION ${cagent_context_dest})
install(FILES ${CAGENT_SOURCE_ROOT}/.dockerignore DESTINATION ${cagent_context_dest} OPTIONAL)
install(DIRECTORY
  ${CAGENT_SOURCE_ROOT}/bench
  ${CAGENT_SOURCE_ROOT}/cmd
  ${CAGENT_SOURCE_ROOT}/dnsguard
  ${CAGENT_SOURCE_ROOT}/image
  ${CAGENT_SOURCE_ROOT}/launcher
  ${CAGENT_SOURCE_ROOT}/nft
  DESTINATION ${cagent_context_dest}
  USE_SOURCE_PERMISSIONS
  # image/build-ca is written per build by cagent; never ship a local one.
  PATTERN "build-ca" EXCLUDE
  PATTERN "*.swp" EXCLUDE)
