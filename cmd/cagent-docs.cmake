# cagent-docs renders cagent's man page and bash/zsh completions from the
# option table (launcher/host/cli.cpp) at build time. A generator of its own
# rather than a hidden `cagent --print-man`: the installed binary keeps no
# documentation-only options, and rendering needs no home directory,
# workspace or Docker engine. The outputs sit in the build tree under share/,
# in the layout they are installed in; cagent-docs itself is not installed.
add_executable(cagent-docs ${CMAKE_CURRENT_LIST_DIR}/cagent-docs.cpp)
target_link_libraries(cagent-docs PRIVATE cagent_launcher_host cagent_warnings)

set(cagent_man_page ${CMAKE_BINARY_DIR}/share/man/man1/cagent.1)
set(cagent_bash_completion ${CMAKE_BINARY_DIR}/share/bash-completion/completions/cagent)
set(cagent_zsh_completion ${CMAKE_BINARY_DIR}/share/zsh/vendor-completions/_cagent)
add_custom_command(
  OUTPUT ${cagent_man_page} ${cagent_bash_completion} ${cagent_zsh_completion}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/share/man/man1
          ${CMAKE_BINARY_DIR}/share/bash-completion/completions ${CMAKE_BINARY_DIR}/share/zsh/vendor-completions
  COMMAND cagent-docs man ${cagent_man_page}
  COMMAND cagent-docs bash ${cagent_bash_completion}
  COMMAND cagent-docs zsh ${cagent_zsh_completion}
  DEPENDS cagent-docs
  COMMENT "Rendering cagent's man page and shell completions from the option table"
  VERBATIM)
add_custom_target(cagent_docs ALL DEPENDS ${cagent_man_page} ${cagent_bash_completion} ${cagent_zsh_completion})

# Where man and bash-completion (XDG_DATA_DIRS) look under a prefix; Debian's
# zsh reads vendor-completions under /usr (another prefix: add the directory
# to fpath).
install(FILES ${cagent_man_page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${cagent_bash_completion} DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
install(FILES ${cagent_zsh_completion} DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
