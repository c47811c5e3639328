#pragma once

// The fault API for testers (FAULTS=on): GET, PUT and DELETE /admin/faults
// behind ADMIN_TOKEN. Pure: a request in, a response out, the board
// changed. With FAULTS off the route is not served at all (404, in api).

#include <string_view>

#include "core/fault.hpp"
#include "http/api_types.hpp"

namespace postd::http {

// Whether `authorization` is "Bearer <token>", compared in constant time
// (as long as the two lengths differ or not: digests are compared).
bool admin_authorized(std::string_view authorization, std::string_view token);

// GET/HEAD: the faults in force. PUT: a JSON object of faults to set
// (core::fault_specs' names, 0 clears one) and an optional "for" (seconds
// until the faults of this body clear); all or nothing. DELETE: clears
// every fault. Each answers the state after it; 401 without the token.
api_response admin_faults(const api_request& req, core::fault_board& board,
                          std::string_view admin_token);

} // namespace postd::http
