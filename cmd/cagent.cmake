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

# The Debian package: `cpack -G DEB` in the build tree packs exactly what the
# install() rules above (and cagent-docs.cmake's) put under the prefix /usr,
# so `cmake --install` and the package cannot differ. The binary is stripped.
# Its library dependencies come from dpkg-shlibdeps (dpkg-dev), read off the
# binary itself, so a library linked later is declared without anyone
# remembering to. Docker: cagent runs the docker CLI for everything; Debian's
# docker.io, Docker CE, or Docker CE's CLI alone (an engine elsewhere,
# DOCKER_HOST) each satisfy it. ca-certificates: the default config trusts
# the host's CA bundle ("system"), and cagent refuses to start without one.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME cagent)
set(CPACK_PACKAGE_CONTACT "cagent maintainers <maintainers@cagent.invalid>"
    CACHE STRING "Maintainer field of the Debian package")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "run an AI coding agent in a locked-down Docker container")
string(JOIN "\n" CPACK_PACKAGE_DESCRIPTION
  "cagent runs Claude Code, Codex or any command in a container whose network"
  "is default-deny (an allowlisting DNS resolver feeds an nftables firewall;"
  "TLS and HTTP are gated by server name) and whose filesystem shows the"
  "workspace with secrets hidden and git history read-only. The first run"
  "builds the image from the context in /usr/share/cagent/context.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "docker.io | docker-ce | docker-ce-cli, ca-certificates")
include(CPack)
