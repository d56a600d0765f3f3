//! Secrets out of text: error chains from HTTP stacks embed request URLs, and a URL's query is
//! where a SAS (or any other signed token) lives. Both the storage and the Kusto errors can
//! pass text through here before it reaches a message or a log line.

/// Replaces the query of every http(s) URL in `text` with `?…`.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = [rest.find("http://"), rest.find("https://")]
        .into_iter()
        .flatten()
        .min()
    {
        let (before, url_and_after) = rest.split_at(start);
        out.push_str(before);
        let end = url_and_after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | '>' | '<'))
            .unwrap_or(url_and_after.len());
        let url = &url_and_after[..end];
        match url.find('?') {
            Some(q) => {
                out.push_str(&url[..q]);
                out.push_str("?…");
            }
            None => out.push_str(url),
        }
        rest = &url_and_after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_queries_are_redacted() {
        let text = "see https://a.b/c?sig=x and error sending request for url (http://127.0.0.1:10000/devstoreaccount1/c/x?sv=2022-11-02&sig=abc%2B)";
        let out = redact_urls(text);
        assert_eq!(
            out,
            "see https://a.b/c?… and error sending request for url (http://127.0.0.1:10000/devstoreaccount1/c/x?…)"
        );
        assert_eq!(redact_urls("no urls"), "no urls");
    }
}
