#include "launcher/host/cli_docs.hpp"

#include <algorithm>
#include <sstream>
#include <vector>

#include "cagent_host/build_info.hpp"

namespace cagent::launcher::host {
namespace {

constexpr std::size_t kWidth = 79;       // --help lines
constexpr std::size_t kHelpColumn = 25;  // where an option's help starts

// Terminal columns of UTF-8 text ("…" is one).
std::size_t columns(std::string_view s) {
  std::size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0U) != 0x80U ? 1 : 0;
  return n;
}

// Words of `text` filled into lines of at most `width` columns, each line
// after the first indented by `indent`; the first continues a line already
// `start` columns wide. Ends with a newline.
std::string fill(std::string_view text, std::size_t start, std::size_t indent, std::size_t width) {
  std::istringstream in{std::string(text)};
  std::string out;
  std::size_t col = start;
  bool first = true;
  for (std::string word; in >> word;) {
    if (!first && col + 1 + columns(word) > width) {
      out += "\n" + std::string(indent, ' ');
      col = indent;
    } else if (!first) {
      out += ' ';
      ++col;
    }
    out += word;
    col += columns(word);
    first = false;
  }
  return out + "\n";
}

// "  -d, --domain NAME" / "      --arg ARG": the left column of --help.
std::string option_label(const OptionSpec& o) {
  return o.short_name != 0 ? std::string("  -") + o.short_name + ", " + long_form(o)
                           : "      " + long_form(o);
}

// One --help row: the label, its help from column kHelpColumn (on the next
// line when the label is wider).
std::string help_row(const std::string& label, std::string_view help) {
  std::string row = label;
  if (columns(label) + 1 > kHelpColumn) {
    row += "\n" + std::string(kHelpColumn, ' ');
  } else {
    row += std::string(kHelpColumn - columns(label), ' ');
  }
  return row + fill(help, kHelpColumn, kHelpColumn, kWidth);
}

std::string option_help(const OptionSpec& o) {
  return std::string(o.help) + (o.repeatable ? " (repeatable)" : "");
}

template <typename F>
void for_options(unsigned command, F f) {
  for (const OptionSpec& o : option_table()) {
    if ((o.commands & command) != 0) f(o);
  }
}

// The first lines of each rendered file, as comments: what it is and where
// to change it.
std::string generated_note(std::string_view comment, std::string_view what) {
  return std::string(comment) + " " + std::string(what) +
         ". Generated from cagent's option table\n" + std::string(comment) +
         " (launcher/host/cli.cpp) by cagent-docs at build time; edit the table.\n";
}

// ---- man page ------------------------------------------------------------------

// Text for a roff line: backslashes and hyphens escaped (so options print
// as ASCII minus signs, copy-pasteable), `x` set in bold, no line starting
// with a control character.
std::string roff(std::string_view text) {
  std::string out;
  bool bold = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else if (c == '`') {
      out += bold ? "\\fR" : "\\fB";
      bold = !bold;
    } else if (text.substr(i, 3) == "…") {
      out += "...";
      i += 2;
    } else {
      out += c;
    }
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out = "\\&" + out;
  return out;
}

std::string man_option_label(const OptionSpec& o) {
  std::string s;
  if (o.short_name != 0) s += "\\fB\\-" + std::string(1, o.short_name) + "\\fR, ";
  s += "\\fB\\-\\-" + roff(o.name) + "\\fR";
  if (o.arg == ArgKind::required) s += " \\fI" + roff(o.metavar) + "\\fR";
  if (o.arg == ArgKind::optional) s += "[=\\fI" + roff(o.metavar) + "\\fR]";
  return s;
}

// An example command line, unfilled: never stretched or hyphenated.
std::string man_example(std::string_view command) {
  return ".nf\nExample: \\fB" + roff(command) + "\\fR\n.fi\n";
}

void man_option(std::ostream& out, const OptionSpec& o) {
  out << ".TP\n" << man_option_label(o) << "\n" << roff(option_help(o)) << ".\n";
  if (!o.detail.empty()) out << roff(o.detail) << "\n";
  if (!o.example.empty()) out << man_example(o.example);
}

std::string man_synopsis(const SubcommandSpec& s) {
  std::string line = ".B cagent " + std::string(s.name) + "\n";
  std::string rest;
  if (!s.operands.empty()) rest += "\\fI" + roff(s.operands) + "\\fR";
  for_options(s.id, [&](const OptionSpec& o) {
    if (!rest.empty()) rest += " ";
    rest += "[" +
            (o.short_name != 0 ? "\\fB\\-" + std::string(1, o.short_name) + "\\fR"
                               : man_option_label(o)) +
            "]";
  });
  return line + (rest.empty() ? "" : rest + "\n");
}

// ---- shells ------------------------------------------------------------------------

// Word lists of one command line's options, as a shell offers them.
std::string option_words(unsigned command) {
  std::string words;
  for_options(command, [&](const OptionSpec& o) {
    if (o.short_name != 0) words += std::string(words.empty() ? "" : " ") + "-" + o.short_name;
    words += std::string(words.empty() ? "" : " ") + "--" + std::string(o.name);
  });
  return words;
}

std::string subcommand_names() {
  std::string names;
  for (const SubcommandSpec& s : subcommand_table())
    names += (names.empty() ? "" : "|") + std::string(s.name);
  return names;
}

// The case patterns that select `o`'s value, in _cagent's "SUB:OPTION"
// form: the value in the next word ("main:-d|main:--domain") or attached
// ("main:--domain=").
std::string bash_patterns(const OptionSpec& o, bool attached) {
  std::vector<std::string> subs;
  if ((o.commands & kMain) != 0) subs.emplace_back("main");
  for (const SubcommandSpec& s : subcommand_table()) {
    if ((o.commands & s.id) != 0) subs.emplace_back(s.name);
  }
  std::string out;
  const auto add = [&out](const std::string& p) { out += (out.empty() ? "" : "|") + p; };
  for (const std::string& sub : subs) {
    if (attached) {
      add(sub + ":--" + std::string(o.name) + "=");
    } else {
      if (o.short_name != 0) add(sub + ":-" + std::string(1, o.short_name));
      add(sub + ":--" + std::string(o.name));
    }
  }
  return out;
}

std::string bash_value_action(const OptionSpec& o) {
  std::string action;
  if (o.complete == Complete::words || o.complete == Complete::files_and_words) {
    action += "_cagent_reply compgen -W '" + std::string(o.words) + "' -- \"$cur\"; ";
  }
  if (o.complete == Complete::files || o.complete == Complete::files_and_words) {
    action += "_cagent_reply compgen -f -- \"$cur\"; compopt -o filenames 2>/dev/null; ";
  }
  return action;
}

// zsh _arguments text: brackets, backslashes and quotes escaped for a
// single-quoted explanation.
std::string zsh_quote(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else if (c == '[' || c == ']' || c == '\\') {
      out += '\\';
      out += c;
    } else {
      out += c;
    }
  }
  return out;
}

std::string zsh_action(const OptionSpec& o) {
  switch (o.complete) {
    case Complete::nothing:
      return " ";
    case Complete::files:
      return "_files";
    case Complete::words:
      return "(" + std::string(o.words) + ")";
    case Complete::files_and_words:
      return "{_cagent_words_or_files " + std::string(o.words) + "}";
  }
  return " ";
}

// The _arguments specs of one option: "-d+" and "--domain=" forms, each
// with its explanation and value.
void zsh_specs(const OptionSpec& o, std::vector<std::string>& specs) {
  const std::string repeat = o.repeatable ? "*" : "";
  const std::string help = "[" + zsh_quote(o.help) + "]";
  std::string exclusive;
  if (o.short_name != 0 && !o.repeatable) {
    exclusive = "(-" + std::string(1, o.short_name) + " --" + std::string(o.name) + ")";
  }
  std::string value;
  if (o.arg == ArgKind::required) value = ":" + zsh_quote(o.metavar) + ":" + zsh_action(o);
  if (o.arg == ArgKind::optional) value = "::" + zsh_quote(o.metavar) + ":" + zsh_action(o);
  if (o.short_name != 0) {
    specs.push_back("'" + exclusive + repeat + "-" + std::string(1, o.short_name) +
                    (o.arg == ArgKind::required ? "+" : "") + help + value + "'");
  }
  const std::string suffix = o.arg == ArgKind::required   ? "="
                             : o.arg == ArgKind::optional ? "=-"
                                                          : "";
  specs.push_back("'" + exclusive + repeat + "--" + std::string(o.name) + suffix + help + value +
                  "'");
}

// A subcommand's operands as an _arguments spec: "NAME…" any number,
// "[SESSION]" one, optional.
std::string zsh_operands(std::string_view operands) {
  std::string name;
  for (std::size_t i = 0; i < operands.size(); ++i) {
    if (operands.substr(i, 3) == "…") {
      i += 2;
    } else if (operands[i] != '[' && operands[i] != ']') {
      name += operands[i];
    }
  }
  const bool many = operands.find("…") != std::string_view::npos;
  const bool optional = operands.starts_with("[");
  return std::string("'") +
         (many       ? "*"
          : optional ? "::"
                     : "1") +
         (optional && !many ? "" : ":") + zsh_quote(name) + ": '";
}

// "    _arguments FLAGS : \\\n      'spec' \\\n      'spec'\n".
std::string zsh_arguments(std::string_view flags, const std::vector<std::string>& specs) {
  std::string out = "    _arguments " + std::string(flags) + " :";
  for (const std::string& spec : specs) out += " \\\n      " + spec;
  return out + "\n";
}

}  // namespace

std::string synopsis(const SubcommandSpec& s) {
  std::string line = "cagent " + std::string(s.name);
  if (!s.operands.empty()) line += " " + std::string(s.operands);
  for_options(s.id, [&](const OptionSpec& o) {
    line += " [" + (o.short_name != 0 ? std::string("-") + o.short_name : long_form(o)) + "]";
  });
  return line;
}

std::string usage_text() {
  std::string out = "usage: cagent [options] [-- command [args…]]\n";
  for (const SubcommandSpec& s : subcommand_table()) {
    // Wrapped to the terminal, never inside a bracket ("[--session ID]"
    // stays whole): its spaces are held by a placeholder while filling.
    std::string line = synopsis(s);
    int depth = 0;
    for (char& c : line) {
      depth += c == '[' ? 1 : c == ']' ? -1 : 0;
      if (c == ' ' && depth > 0) c = '\x01';
    }
    std::string filled = fill(line, 7, 7 + 8 + s.name.size(), kWidth);
    std::replace(filled.begin(), filled.end(), '\x01', ' ');
    out += "       " + filled;
  }
  out += "\n" + fill(std::string(kDescription) + " Exit status: " + std::string(kExitStatus) + ".",
                     0, 0, kWidth);
  out += "\noptions:\n";
  for_options(kMain,
              [&](const OptionSpec& o) { out += help_row(option_label(o), option_help(o)); });
  out += "\nsubcommands:\n";
  for (const SubcommandSpec& s : subcommand_table()) {
    out += help_row(
        "  " + std::string(s.name) + (s.operands.empty() ? "" : " " + std::string(s.operands)),
        s.help);
    for_options(s.id,
                [&](const OptionSpec& o) { out += help_row(option_label(o), option_help(o)); });
  }
  out += "\n" + fill(kSubcommandNote, 0, 0, kWidth);
  out += "\nenvironment:\n";
  for (const EnvironmentSpec& e : environment_table())
    out += help_row("  " + std::string(e.name), e.help);
  out += "\nMore in man cagent and the README.\n";
  return out;
}

std::string render_man_page() {
  std::ostringstream out;
  out << generated_note(".\\\"", "cagent(1)") << ".TH CAGENT 1 \"\" \"cagent "
      << roff(build_info::kVersion)
      << "\" \"User Commands\"\n"
      // Paths and options read better ragged-right and unhyphenated.
      << ".ad l\n.nh\n"
      << ".SH NAME\ncagent \\- " << roff(kSummary) << "\n"
      << ".SH SYNOPSIS\n.B cagent\n[\\fIoptions\\fR] [\\fB\\-\\-\\fR \\fIcommand\\fR "
         "[\\fIargs\\fR...]]\n";
  for (const SubcommandSpec& s : subcommand_table()) out << ".br\n" << man_synopsis(s);
  out << ".SH DESCRIPTION\n"
      << roff(kDescription) << "\n.PP\n"
      << roff(
             "On the first run cagent writes ~/.cagent/config.yaml from the built-in default and "
             "builds "
             "the image from its image context (a few minutes, once; the log goes to "
             "~/.cagent/logs/). "
             "Later runs rebuild only when the image's sources, build arguments or CA certificates "
             "changed. At the end of a session cagent names the lookups the cage blocked.")
      << "\n.PP\n"
      << roff("Long options take --flag value or --flag=value; short ones -d value or -dvalue.")
      << "\n"
      << ".SH OPTIONS\n";
  for_options(kMain, [&](const OptionSpec& o) { man_option(out, o); });
  out << ".SH SUBCOMMANDS\n" << roff(kSubcommandNote) << "\n";
  for (const SubcommandSpec& s : subcommand_table()) {
    out << ".TP\n\\fBcagent " << roff(s.name) << "\\fR"
        << (s.operands.empty() ? "" : " \\fI" + roff(s.operands) + "\\fR") << "\n"
        << roff(s.help) << ".\n";
    if (!s.example.empty()) out << man_example(s.example);
    bool any = false;
    for_options(s.id, [&](const OptionSpec& o) {
      if (!any) out << ".RS\n";
      any = true;
      man_option(out, o);
    });
    if (any) out << ".RE\n";
  }
  out << ".SH ENVIRONMENT\n";
  for (const EnvironmentSpec& e : environment_table())
    out << ".TP\n.B " << e.name << "\n" << roff(e.help) << ".\n";
  out << ".SH FILES\n"
      << ".TP\n.I ~/.cagent/config.yaml\n"
      << roff("the global configuration, written from the built-in default on first use") << ".\n"
      << ".TP\n.I .cagent.yaml\n"
      << roff("the workspace's configuration, used once approved (--accept-workspace-config)")
      << ".\n"
      << ".TP\n.I ~/.cagent/logs/\n"
      << roff("image build logs and each session's decision record") << ".\n"
      << ".SH EXIT STATUS\n"
      << roff(kExitStatus) << ".\n"
      << ".SH SEE ALSO\n.BR docker (1)\n";
  return out.str();
}

std::string render_bash_completion() {
  std::ostringstream out;
  out << generated_note("#", "bash completion for cagent(1)")
      << "_cagent_reply() { mapfile -t -O \"${#COMPREPLY[@]}\" COMPREPLY < <(\"$@\"); }\n"
      << "_cagent() {\n"
      << "  local cur=${COMP_WORDS[COMP_CWORD]} prev= opt= pre= sub=main i\n"
      << "  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD-1]}\n"
      << "  COMPREPLY=()\n"
      << "  # After --: a command line of its own.\n"
      << "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
      << "    if [[ ${COMP_WORDS[i]} == -- ]]; then\n"
      << "      if declare -F _command_offset >/dev/null; then _command_offset $((i + 1))\n"
      << "      else _cagent_reply compgen -c -- \"$cur\"; fi\n"
      << "      return 0\n"
      << "    fi\n"
      << "  done\n"
      << "  # A subcommand is the first word.\n"
      << "  case ${COMP_WORDS[1]-} in " << subcommand_names()
      << ") ((COMP_CWORD > 1)) && sub=${COMP_WORDS[1]} ;; esac\n"
      << "  # The option a value is for: \"--opt VALUE\", or \"--opt=VALUE\" (one word,\n"
      << "  # or three when COMP_WORDBREAKS splits at '=').\n"
      << "  if [[ $prev == = ]] && ((COMP_CWORD >= 2)); then opt=${COMP_WORDS[COMP_CWORD-2]}=\n"
      << "  elif [[ $cur == --*=* ]]; then opt=${cur%%=*}=; pre=$opt; cur=${cur#*=}\n"
      << "  else opt=$prev; fi\n"
      << "  case $sub:$opt in\n";
  for (const OptionSpec& o : option_table()) {
    if (o.arg == ArgKind::none) continue;
    const std::string offer = bash_value_action(o);
    const std::string done = "COMPREPLY=(\"${COMPREPLY[@]/#/$pre}\"); return 0 ;;\n";
    out << "    " << bash_patterns(o, true) << ") " << offer << done;
    if (o.arg == ArgKind::required) {
      out << "    " << bash_patterns(o, false) << ") " << offer << done;
    } else if (o.accepts_next != nullptr) {
      // An optional value the parser also takes from the next word
      // (--reset civd): offered there too, unless an option is being typed.
      out << "    " << bash_patterns(o, false) << ") [[ $cur == -* ]] || { " << offer
          << "return 0; } ;;\n";
    }
  }
  out << "  esac\n"
      << "  if [[ $cur == -* ]]; then\n"
      << "    case $sub in\n"
      << "      main) _cagent_reply compgen -W '" << option_words(kMain) << "' -- \"$cur\" ;;\n";
  for (const SubcommandSpec& s : subcommand_table()) {
    out << "      " << s.name << ") _cagent_reply compgen -W '" << option_words(s.id)
        << "' -- \"$cur\" ;;\n";
  }
  out << "    esac\n"
      << "  elif ((COMP_CWORD == 1)); then\n"
      << "    _cagent_reply compgen -W '";
  for (const SubcommandSpec& s : subcommand_table()) out << s.name << ' ';
  out << "--' -- \"$cur\"\n"
      << "  fi\n"
      << "  return 0\n"
      << "}\n"
      << "complete -F _cagent cagent\n";
  return out.str();
}

std::string render_zsh_completion() {
  std::ostringstream out;
  out << "#compdef cagent\n"
      << generated_note("#", "zsh completion for cagent(1)")
      << "# (An action of _arguments cannot hold colons: this one stands for both.)\n"
      << "_cagent_words_or_files() { _alternative \"values:value:($*)\" 'files:file:_files'; }\n"
      << "_cagent() {\n"
      << "  local i\n"
      << "  # After --: a command line of its own.\n"
      << "  for (( i = 2; i < CURRENT; i++ )); do\n"
      << "    if [[ ${words[i]} == -- ]]; then\n"
      << "      shift $i words\n"
      << "      (( CURRENT -= i ))\n"
      << "      _normal\n"
      << "      return\n"
      << "    fi\n"
      << "  done\n"
      << "  local -a subcommands=(\n";
  for (const SubcommandSpec& s : subcommand_table()) {
    out << "    '" << s.name << ":" << zsh_quote(s.help) << "'\n";
  }
  out << "  )\n"
      << "  if (( CURRENT == 2 )) && [[ ${words[2]} != -* ]]; then\n"
      << "    _describe -t subcommands 'cagent subcommand' subcommands\n"
      << "    return\n"
      << "  fi\n"
      << "  case ${words[2]} in\n";
  for (const SubcommandSpec& s : subcommand_table()) {
    std::vector<std::string> specs;
    for_options(s.id, [&](const OptionSpec& o) { zsh_specs(o, specs); });
    if (!s.operands.empty()) specs.push_back(zsh_operands(s.operands));
    out << "  " << s.name << ")\n"
        << "    shift words\n"
        << "    (( CURRENT-- ))\n"
        << zsh_arguments("-s", specs) << "    ;;\n";
  }
  std::vector<std::string> specs;
  for_options(kMain, [&](const OptionSpec& o) { zsh_specs(o, specs); });
  out << "  *)\n"
      << zsh_arguments("-s -S", specs) << "    ;;\n"
      << "  esac\n"
      << "}\n"
      << "_cagent \"$@\"\n";
  return out.str();
}

}  // namespace cagent::launcher::host
