#pragma once
// Making untrusted text safe to print on the user's terminal.
//
// Names in the workspace, the contents of `.git` files and values in a
// workspace `.cagent.yaml` are chosen by whoever last wrote the workspace —
// in cagent's threat model, the agent or the author of a cloned repository.
// Printed raw, a file name can carry terminal escape sequences (rewrite the
// screen, retitle the window, in some terminals answer back into the input),
// carriage returns and newlines that forge or hide cagent's own messages, or
// bidi controls that make a path read differently from what it is. Every
// host-side message that contains such text passes it through printable().

#include <cstdint>
#include <string>
#include <string_view>

namespace cagent::launcher::host {

// Returns `text` with every byte or character that could act on a terminal
// replaced by a visible escape, so the result contains only printable ASCII
// and printable, valid UTF-8:
//   \n \r \t          the usual C escapes
//   \\                a backslash (so escapes cannot be forged by the input)
//   \xNN              other C0 controls (0x00-0x1f), DEL (0x7f), and every
//                     byte that is not part of valid UTF-8 (stray continuation
//                     bytes, overlong forms, surrogates, > U+10FFFF, truncated)
//   \u0080 ... \u009f C1 controls (valid UTF-8 for U+0080-U+009F)
//   \u2028 \u2029, \u200e \u200f, \u202a-\u202e, \u2066-\u2069
//                     line/paragraph separators and bidi controls
// Everything else (printable ASCII, valid non-control UTF-8) is kept as is.
std::string printable(std::string_view text);

// True when printable() would escape something other than a backslash, i.e.
// when `text` holds a control character, a bidi control or invalid UTF-8.
bool needs_escaping(std::string_view text);

// `t` (seconds since the epoch) as ISO 8601 in UTC: "2026-12-07T06:30:00Z".
std::string utc_iso8601(std::int64_t t);

}  // namespace cagent::launcher::host
