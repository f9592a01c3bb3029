//! Parsing request paths of the distribution API into routes. Only shape is checked here; names
//! and references are validated by the resolver and the reference parser.

use http::Method;

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// `GET /v2/`: the API version check.
    Base,
    /// `/v2/_catalog`: refused, pullgate does not enumerate upstream repositories.
    Catalog,
    Manifest {
        name: &'a str,
        reference: &'a str,
    },
    Blob {
        name: &'a str,
        digest: &'a str,
    },
    TagsList {
        name: &'a str,
    },
    Referrers {
        name: &'a str,
        digest: &'a str,
    },
    /// Blob uploads: push, refused.
    Upload,
    /// Not part of the API at all.
    NotFound,
}

impl Route<'_> {
    /// A short label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Route::Base => "base",
            Route::Catalog => "catalog",
            Route::Manifest { .. } => "manifest",
            Route::Blob { .. } => "blob",
            Route::TagsList { .. } => "tags",
            Route::Referrers { .. } => "referrers",
            Route::Upload => "upload",
            Route::NotFound => "not_found",
        }
    }
}

/// Parses the path of a `/v2/` request. Endpoints are recognised from the right, because the
/// final components (a tag or digest cannot contain `/`) are unambiguous while a repository
/// name may itself contain words like `manifests`.
pub fn parse(path: &str) -> Route<'_> {
    let Some(rest) = path.strip_prefix("/v2") else {
        return Route::NotFound;
    };
    if rest.is_empty() || rest == "/" {
        return Route::Base;
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return Route::NotFound;
    };
    if rest == "_catalog" {
        return Route::Catalog;
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Route::TagsList { name };
    }
    if rest.contains("/blobs/uploads") {
        return Route::Upload;
    }
    let Some((head, last)) = rest.rsplit_once('/') else {
        return Route::NotFound;
    };
    let Some((name, endpoint)) = head.rsplit_once('/') else {
        return Route::NotFound;
    };
    match endpoint {
        "manifests" => Route::Manifest {
            name,
            reference: last,
        },
        "blobs" => Route::Blob { name, digest: last },
        "referrers" => Route::Referrers { name, digest: last },
        _ => Route::NotFound,
    }
}

/// Whether `method` only reads. Everything else is push or delete, which pullgate refuses.
pub fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_endpoint() {
        let d = "sha256:abc";
        let cases = [
            ("/v2/", Route::Base),
            ("/v2", Route::Base),
            ("/v2/_catalog", Route::Catalog),
            (
                "/v2/library/nginx/manifests/1.27",
                Route::Manifest {
                    name: "library/nginx",
                    reference: "1.27",
                },
            ),
            (
                "/v2/ghcr.io/org/app/blobs/sha256:abc",
                Route::Blob {
                    name: "ghcr.io/org/app",
                    digest: d,
                },
            ),
            ("/v2/a/b/tags/list", Route::TagsList { name: "a/b" }),
            (
                "/v2/a/referrers/sha256:abc",
                Route::Referrers {
                    name: "a",
                    digest: d,
                },
            ),
            ("/v2/a/blobs/uploads/", Route::Upload),
            ("/v2/a/blobs/uploads/1234-5678", Route::Upload),
            // A repository may contain endpoint words.
            (
                "/v2/manifests/manifests/manifests/x",
                Route::Manifest {
                    name: "manifests/manifests",
                    reference: "x",
                },
            ),
            ("/", Route::NotFound),
            ("/v2x/a/manifests/1", Route::NotFound),
            ("/v2/nginx", Route::NotFound),
            ("/v2/a/things/1", Route::NotFound),
        ];
        for (path, want) in cases {
            assert_eq!(parse(path), want, "{path}");
        }
    }

    #[test]
    fn empty_name_or_reference_is_left_for_validation() {
        assert_eq!(
            parse("/v2//manifests/1"),
            Route::Manifest {
                name: "",
                reference: "1"
            }
        );
        assert_eq!(
            parse("/v2/a/manifests/"),
            Route::Manifest {
                name: "a",
                reference: ""
            }
        );
    }
}
