//! The API's routes: one table (method, path pattern, endpoint), matched by API Gateway's route
//! key where there is one, else by the raw path. Every route carries the project, so that an
//! IAM policy on `execute-api:Invoke` (`…/<stage>/<METHOD>/projects/<project>/*`) scopes what a
//! caller may do. A new resource adds rows here and one module beside `builds` and `agents`.

use lambda_http::http::Method;
use lambda_http::{Request, RequestExt};

/// What a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    SubmitBuild,
    GetBuild,
    CancelBuild,
    BuildLogs,
    LatestAgent,
    ListRuntimes,
    RetireRuntime,
}

pub(super) struct RouteSpec {
    pub method: Method,
    /// As in template.yaml's `Path` (and API Gateway's route key).
    pub path: &'static str,
    pub endpoint: Endpoint,
}

pub(super) const ROUTES: &[RouteSpec] = &[
    row(
        Method::POST,
        "/projects/{project}/builds",
        Endpoint::SubmitBuild,
    ),
    row(
        Method::GET,
        "/projects/{project}/builds/{buildId}",
        Endpoint::GetBuild,
    ),
    row(
        Method::DELETE,
        "/projects/{project}/builds/{buildId}",
        Endpoint::CancelBuild,
    ),
    row(
        Method::GET,
        "/projects/{project}/builds/{buildId}/logs",
        Endpoint::BuildLogs,
    ),
    row(
        Method::GET,
        "/projects/{project}/agents/{agent}",
        Endpoint::LatestAgent,
    ),
    row(
        Method::GET,
        "/projects/{project}/agents/{agent}/runtimes",
        Endpoint::ListRuntimes,
    ),
    row(
        Method::DELETE,
        "/projects/{project}/agents/{agent}/runtimes/{runtimeName}",
        Endpoint::RetireRuntime,
    ),
];

const fn row(method: Method, path: &'static str, endpoint: Endpoint) -> RouteSpec {
    RouteSpec {
        method,
        path,
        endpoint,
    }
}

/// A matched route and the values of its `{parameters}`.
pub(super) struct Matched {
    pub spec: &'static RouteSpec,
    params: Vec<(&'static str, String)>,
}

impl Matched {
    /// The value of `{name}`; every name a route's pattern has is there.
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    pub fn name(&self) -> String {
        format!("{} {}", self.spec.method, self.spec.path)
    }
}

/// How a request routes.
pub(super) enum Routing {
    Found(Matched),
    /// The path is a route's, the method none of them: the methods it accepts.
    WrongMethod(String),
    Unknown,
}

pub(super) fn route(request: &Request, route_key: Option<&str>) -> Routing {
    let method = request.method();
    // Behind API Gateway: the route key names the pattern, the path parameters its values.
    if let Some((m, path)) = route_key.and_then(|k| k.split_once(' ')) {
        if let Some(spec) = ROUTES.iter().find(|r| r.method == m && r.path == path) {
            let given = request.path_parameters_ref();
            let params: Option<Vec<_>> = names(spec.path)
                .map(|n| Some((n, given.and_then(|p| p.first(n))?.to_string())))
                .collect();
            if let Some(params) = params {
                return Routing::Found(Matched { spec, params });
            }
        }
    }
    // Function URLs and `cargo lambda watch` send `$default`: the raw path decides (raw, so
    // that `%2e%2e` stays a malformed id), matched from its end so that a stage or any other
    // prefix in front does not matter; the longest pattern first.
    let path = match request.raw_http_path() {
        "" => request.uri().path(),
        raw => raw,
    };
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut by_length: Vec<&'static RouteSpec> = ROUTES.iter().collect();
    by_length.sort_by_key(|r| std::cmp::Reverse(pattern(r.path).count()));
    let Some(longest) = by_length
        .iter()
        .find_map(|r| capture(r.path, &segments).map(|_| pattern(r.path).count()))
    else {
        return Routing::Unknown;
    };
    let same_path: Vec<&'static RouteSpec> = by_length
        .into_iter()
        .filter(|r| pattern(r.path).count() == longest && capture(r.path, &segments).is_some())
        .collect();
    match same_path.iter().find(|r| r.method == method) {
        Some(spec) => Routing::Found(Matched {
            spec,
            params: capture(spec.path, &segments).unwrap_or_default(),
        }),
        None => Routing::WrongMethod(
            same_path
                .iter()
                .map(|r| r.method.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
    }
}

fn pattern(path: &'static str) -> impl Iterator<Item = &'static str> {
    path.split('/').filter(|s| !s.is_empty())
}

fn names(path: &'static str) -> impl Iterator<Item = &'static str> {
    pattern(path).filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
}

/// The parameters when the last segments of the path are the pattern's.
fn capture(path: &'static str, segments: &[&str]) -> Option<Vec<(&'static str, String)>> {
    let want: Vec<&'static str> = pattern(path).collect();
    let tail = segments.get(segments.len().checked_sub(want.len())?..)?;
    let mut params = Vec::new();
    for (w, s) in want.iter().zip(tail) {
        match w.strip_prefix('{').and_then(|n| n.strip_suffix('}')) {
            Some(name) => params.push((name, s.to_string())),
            None if w == s => {}
            None => return None,
        }
    }
    Some(params)
}

/// Every route, for a 404's message.
pub(super) fn listing() -> String {
    ROUTES
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect::<Vec<_>>()
        .join(", ")
}
