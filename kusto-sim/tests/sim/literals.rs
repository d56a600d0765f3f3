//! String literals over HTTP: escapes decode as Kusto.Language decodes them (the full case
//! list is in the lexer's unit tests), a bad escape is a syntax error, and hidden literals
//! stay out of the command log.

use serde_json::json;

use super::support::{Client, start};

const NO_STORAGE: &str = "http://127.0.0.1:9/devstoreaccount1";

#[tokio::test]
async fn escapes_decode_and_bad_ones_are_syntax_errors() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    // Values as Microsoft's parser decodes them: \x41 'A', \u00e9 'é', \101 'A' (octal),
    // \400 U+0100 (the decoder reads three digits), @'..' verbatim with '' for one quote.
    let t = c
        .query(
            "db",
            r#"print a = '\x41\u00e9\101\400', b = @'c:\d''e', c = "q\"\t", d = h'x\ny'"#,
        )
        .await;
    assert_eq!(
        t.rows[0],
        vec![
            json!("A\u{e9}A\u{100}"),
            json!("c:\\d'e"),
            json!("q\"\t"),
            json!("x\ny")
        ]
    );
    for bad in [r"print '\q'", r"print '\8'", r"print '\x4'"] {
        let (status, body) = c.query_v2("db", bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "BadRequest_SyntaxError", "{bad}");
    }
}

#[tokio::test]
async fn hidden_literals_are_redacted_in_the_command_log() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    c.ok("db", ".create table T (a:long)").await;
    c.ok("db", ".create-or-alter external table bk_T (a:long) kind=storage dataformat=parquet (h@'http://127.0.0.1:9/devstoreaccount1/c/p?sv=1&sig=SECRET', H\"http://127.0.0.1:9/devstoreaccount1/c/q;SECRETKEY\")").await;
    let shown = c.ok("db", ".show external tables").await;
    let roots = shown.cell(0, "ConnectionStrings").to_string();
    assert!(
        roots.contains("/c/q;SECRETKEY"),
        "the table still has its roots: {roots}"
    );
    let logged = &server.state().commands()[1].csl;
    assert_eq!(
        logged,
        ".create-or-alter external table bk_T (a:long) kind=storage dataformat=parquet (h@'*****', H\"*****\")"
    );
    c.ok("db", ".drop external table bk_T ifexists").await;
    c.ok("db", ".drop external table bk_T ifexists").await;
    let (status, _) = c.mgmt("db", ".drop external table bk_T").await;
    assert_eq!(status, 400, "without ifexists a missing table is an error");
}
