#pragma once
// The one place bench/ includes Boost.Asio. g++ 12 at -O2 reports
// -Wnull-dereference false positives inside Asio's scheduler and executor
// comparison after inlining (they point into /usr/include, but middle-end
// warnings are not covered by the system-header exemption); silence exactly
// that warning for Asio's own code, keep it on for ours.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#pragma GCC diagnostic pop
