// UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits, so ids
// sort roughly by creation time and index inserts stay at the right edge.
#pragma once

#include <string>

namespace dbsup {

/// A new UUIDv7 in its canonical 36-character text form.
std::string new_uuid7();

}  // namespace dbsup
