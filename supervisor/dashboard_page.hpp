// The dashboard's one page (supervisor/dashboard_page.html), compiled into the
// binary by CMake: served offline, no build step, no CDN.
#pragma once

#include <string_view>

namespace dbsup {

std::string_view dashboard_page();

}  // namespace dbsup
