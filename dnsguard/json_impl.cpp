// Boost.JSON's implementation, compiled once for the whole program (its
// header-only mode; no Boost library to link). contracts.cpp uses it.
#include <boost/json/src.hpp>
