//! Collections, paged as Azure pages them. Every reader of a collection (the setup script through
//! `az rest`, the backend, `az` itself) must follow the link to the next page: none may assume
//! that one page is all there is.
//!
//! - Microsoft Graph v1.0 ("Paging Microsoft Graph data in your app",
//!   learn.microsoft.com/graph/paging): a page is `{"@odata.context", "value": [...],
//!   "@odata.nextLink"}`; the link is an opaque URL (its `$skiptoken` means nothing to a client)
//!   that keeps the request's other query options; `$top` asks for a page size, which for directory
//!   objects must be 1 to 999 (Graph: 400 "Invalid page size specified"); the last page has no link.
//! - Azure Resource Manager (Azure/azure-rest-api-specs, `x-ms-pageable` with `nextLinkName:
//!   "nextLink"` on every list the backend and the script read: Microsoft.Authorization
//!   2022-04-01 role assignments, 2022-04-01 role definitions and permissions, subscriptions
//!   2022-12-01 subscriptions and tenants, management groups 2021-04-01): `{"value": [...],
//!   "nextLink"}`, the link a full URL to GET as it is, absent (or null) on the last page.
//!
//! Page sizes are behaviour switches (`graphPageSize`, `armPageSize`), small by default so that
//! every reader meets a second page in tests; Azure's own defaults are larger (Graph: 100 for
//! applications and service principals), never infinite.

use std::collections::HashMap;

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::entra::base_url;
use super::graph::graph_error;

/// The query option that carries the position of a page (opaque to clients).
const SKIP: &str = "$skiptoken";
/// Graph's largest `$top` for directory objects.
const GRAPH_MAX_TOP: usize = 999;

/// Where a page starts: the offset in `$skiptoken` (`p<offset>`), 0 without one.
fn offset(query: &HashMap<String, String>) -> Option<usize> {
    match query.get(SKIP) {
        None => Some(0),
        Some(token) => token.strip_prefix('p').and_then(|n| n.parse().ok()),
    }
}

/// The link to the page at `next`: the request's own URL with its other query options kept and
/// the skip token replaced.
fn next_link(headers: &HeaderMap, uri: &Uri, next: usize) -> String {
    let kept: Vec<&str> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| !p.starts_with("$skiptoken=") && !p.to_ascii_lowercase().starts_with("%24skiptoken="))
        .collect();
    let mut query = kept.join("&");
    if !query.is_empty() {
        query.push('&');
    }
    format!("{}{}?{query}{SKIP}=p{next}", base_url(headers), uri.path())
}

/// One page of a Graph collection, or Graph's 400 for a `$top` or `$skiptoken` it does not take.
/// `context` is the part of `@odata.context` after `$metadata#` (e.g. `applications`).
pub(crate) fn graph_page(
    headers: &HeaderMap,
    uri: &Uri,
    query: &HashMap<String, String>,
    items: Vec<Value>,
    default_size: usize,
    context: &str,
) -> Result<Value, Box<Response>> {
    let size = match query.get("$top") {
        None => default_size.max(1),
        Some(top) => match top.parse::<usize>() {
            Ok(n) if (1..=GRAPH_MAX_TOP).contains(&n) => n,
            _ => {
                return Err(Box::new(graph_error(
                    StatusCode::BAD_REQUEST,
                    "Request_UnsupportedQuery",
                    &format!(
                        "Invalid page size specified: '{top}'. Must be between 1 and {GRAPH_MAX_TOP} inclusive."
                    ),
                )));
            }
        },
    };
    let Some(skip) = offset(query) else {
        return Err(Box::new(graph_error(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "The specified page token value has expired or is invalid.",
        )));
    };
    let total = items.len();
    let value: Vec<Value> = items.into_iter().skip(skip).take(size).collect();
    let mut page = json!({
        "@odata.context": format!("{}/v1.0/$metadata#{context}", base_url(headers)),
        "value": value,
    });
    if skip + size < total {
        page["@odata.nextLink"] = json!(next_link(headers, uri, skip + size));
    }
    Ok(page)
}

/// One page of an ARM collection, or ARM's 400 for a skip token it did not give.
pub(crate) fn arm_page(
    headers: &HeaderMap,
    uri: &Uri,
    query: &HashMap<String, String>,
    items: Vec<Value>,
    size: usize,
) -> Result<Value, Box<Response>> {
    let size = size.max(1);
    let Some(skip) = offset(query) else {
        return Err(Box::new(super::arm::arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidSkipToken",
            "The skip token in the request is not valid.",
        )));
    };
    let total = items.len();
    let value: Vec<Value> = items.into_iter().skip(skip).take(size).collect();
    let mut page = json!({ "value": value });
    if skip + size < total {
        page["nextLink"] = json!(next_link(headers, uri, skip + size));
    }
    Ok(page)
}

/// A request for a collection: what paging needs of it.
pub(crate) struct Listing<'a> {
    pub headers: &'a HeaderMap,
    pub uri: &'a Uri,
    pub query: &'a HashMap<String, String>,
}

impl Listing<'_> {
    /// The ARM page of `items` this request asks for.
    pub(crate) fn arm(&self, items: Vec<Value>, size: usize) -> Response {
        match arm_page(self.headers, self.uri, self.query, items, size) {
            Ok(page) => axum::Json(page).into_response(),
            Err(r) => *r,
        }
    }

    /// The Graph page of `items` this request asks for (`context`: see [`graph_page`]).
    pub(crate) fn graph(&self, items: Vec<Value>, size: usize, context: &str) -> Response {
        match graph_page(self.headers, self.uri, self.query, items, size, context) {
            Ok(page) => axum::Json(page).into_response(),
            Err(r) => *r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_graph_collection_pages_by_top_and_keeps_the_other_options() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "graph.local".parse().unwrap());
        let uri: Uri = "/v1.0/applications?$filter=displayName%20eq%20'x'&$top=2"
            .parse()
            .unwrap();
        let items: Vec<Value> = (0..5).map(|i| json!({"id": i})).collect();
        let first = graph_page(
            &headers,
            &uri,
            &q(&[("$top", "2")]),
            items.clone(),
            100,
            "applications",
        )
        .unwrap();
        assert_eq!(first["value"], json!([{"id": 0}, {"id": 1}]));
        assert_eq!(
            first["@odata.context"],
            "http://graph.local/v1.0/$metadata#applications"
        );
        assert_eq!(
            first["@odata.nextLink"],
            "http://graph.local/v1.0/applications?$filter=displayName%20eq%20'x'&$top=2&$skiptoken=p2"
        );
        let last = graph_page(
            &headers,
            &uri,
            &q(&[("$top", "2"), (SKIP, "p4")]),
            items.clone(),
            100,
            "applications",
        )
        .unwrap();
        assert_eq!(last["value"], json!([{"id": 4}]));
        assert!(last.get("@odata.nextLink").is_none());
        for bad in ["0", "1000", "x"] {
            assert!(graph_page(&headers, &uri, &q(&[("$top", bad)]), items.clone(), 100, "a").is_err());
        }
        assert!(graph_page(&headers, &uri, &q(&[(SKIP, "2")]), items, 100, "a").is_err());
    }

    #[test]
    fn an_arm_collection_pages_and_keeps_the_filter() {
        let headers = HeaderMap::new();
        let uri: Uri = "/subscriptions/s/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=principalId%20eq%20'p'&$skiptoken=p1"
            .parse()
            .unwrap();
        let items: Vec<Value> = (0..3).map(|i| json!(i)).collect();
        let page = arm_page(&headers, &uri, &q(&[(SKIP, "p1")]), items, 1).unwrap();
        assert_eq!(page["value"], json!([1]));
        assert_eq!(
            page["nextLink"],
            "http://127.0.0.1/subscriptions/s/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=principalId%20eq%20'p'&$skiptoken=p2"
        );
    }
}
