#include "core/fleet/mesos_http.hpp"

#include "core/bundle/http_call.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"

namespace kiln::fleet {

namespace {

constexpr std::size_t k_answer_limit = 64u << 20; // GET_AGENTS of a large cluster
constexpr std::uint64_t k_token_limit = 64u << 10;

std::string
trimmed(std::string s)
{
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) {
    s.pop_back();
  }
  return s;
}

constexpr int k_redirect_limit = 3;

bundle::HttpAnswer
one_call(const std::string& subject, const bundle::HttpCall& c)
{
  try {
    return bundle::http_call(c);
  } catch (const Error& e) {
    if (e.exit_code() != k_exit_failure) {
      throw Error(subject, e.reason(), e.exit_code()); // an interruption keeps its exit status
    }
    throw MasterUnavailable(subject, e.reason());
  }
}

// `c`, following a master that is not the leader to the one it names (307 Temporary
// Redirect: the same POST, body and headers to the Location) at most k_redirect_limit times.
bundle::HttpAnswer
led_call(const std::string& subject, bundle::HttpCall c)
{
  for (int hops = 0;; ++hops) {
    bundle::HttpAnswer answer = one_call(subject, c);
    if (answer.status != 307) {
      return answer;
    }
    if (answer.redirect_url.empty()) {
      throw Error(subject, "HTTP 307 from " + c.url + " names no leader (no Location)");
    }
    if (hops == k_redirect_limit) {
      throw Error(subject, "still redirected (HTTP 307) after " + std::to_string(k_redirect_limit) + " hops, last to " +
                             answer.redirect_url + ": no leading master answers");
    }
    c.url = answer.redirect_url;
  }
}

} // namespace

std::string
read_token(const Cluster& cluster)
{
  if (cluster.token_file.empty()) {
    return {};
  }
  auto token = util::read_file_within(cluster.token_file, k_token_limit);
  if (!token) {
    throw Error(cluster.token_file.string(), "larger than " + std::to_string(k_token_limit) + " bytes: not a token");
  }
  std::string t = trimmed(*token);
  if (t.empty() || t.find_first_of("\r\n") != std::string::npos) {
    throw Error(cluster.token_file.string(), "not one line holding a token");
  }
  return t;
}

std::vector<std::string>
auth_headers(const std::string& token)
{
  if (token.empty()) {
    return {};
  }
  return {"Authorization: token=" + token};
}

HttpMesosApi::HttpMesosApi(const Cluster& cluster)
  : m_url(cluster.api_url), m_ca_file(cluster.ca_file.string()), m_token(read_token(cluster))
{}

nlohmann::json
HttpMesosApi::call(const nlohmann::json& request)
{
  const std::string subject = "Mesos " + request.value("type", std::string("call"));
  bundle::HttpCall c;
  c.url = m_url;
  c.method = "POST";
  c.body = request.dump();
  c.headers = auth_headers(m_token);
  c.headers.insert(c.headers.end(), {"Content-Type: application/json", "Accept: application/json"});
  c.ca_file = m_ca_file;
  c.user_agent = "kiln-fleet/" KILN_VERSION;
  c.timeout = std::chrono::seconds(30);
  c.limit = k_answer_limit;
  bundle::HttpAnswer answer = led_call(subject, c);
  if (answer.status != 200 && answer.status != 202) {
    std::string text = answer.body.substr(0, 200);
    for (char& ch : text) {
      if (ch == '\n' || ch == '\r') {
        ch = ' ';
      }
    }
    const std::string reason = "HTTP " + std::to_string(answer.status) + (text.empty() ? "" : ": " + trimmed(text));
    if (answer.status >= 500) {
      throw MasterUnavailable(subject, reason);
    }
    throw Error(subject, reason);
  }
  if (answer.body.empty()) {
    return nullptr;
  }
  try {
    return nlohmann::json::parse(answer.body);
  } catch (const nlohmann::json::exception&) {
    throw Error(subject, "the answer is not JSON");
  }
}

} // namespace kiln::fleet
