#include "exporter/http.h"

namespace bpmc::exporter {

http::AuthResult Route::Authenticate(const HttpRequest&) {
  return http::AuthResult::Unauthorized("this route accepts no credentials");
}

void Route::OnRefusal(const HttpRequest&, const HttpResponse&) {}

}  // namespace bpmc::exporter
