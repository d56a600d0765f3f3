//! The request log: every command text received, kept in memory and, when configured,
//! appended to a JSON-lines file (`{"endpoint":"mgmt|query","db":"..","csl":".."}`, plus
//! `"refused":".."` when kusto-sim's own parser refused the text). The file also gets the
//! texts run in-process (`Sim::mgmt`, `Sim::query`), so Microsoft's parser checks every text
//! kusto-sim accepted in any test, not only what came over HTTP. Hidden string literals
//! (`h'..'`, usually connection strings with secrets) are logged as `h'*****'`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedCommand {
    pub endpoint: String,
    pub db: String,
    pub csl: String,
    /// Why kusto-sim's own parser refused the text (a syntax error, or valid Kusto it does not
    /// implement). A refused text proves nothing about Kusto's grammar, so the parser check
    /// skips it; every accepted text must parse in Microsoft's parser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl LoggedCommand {
    /// An entry for `csl`, marked refused when kusto-sim's parser does not accept it.
    pub fn new(endpoint: &str, db: &str, csl: &str) -> Self {
        Self {
            endpoint: endpoint.to_string(),
            db: db.to_string(),
            csl: csl.to_string(),
            refused: crate::parse::refusal(csl),
        }
    }
}

#[derive(Debug, Default)]
pub struct CommandLog {
    file: Option<PathBuf>,
    entries: Mutex<Vec<LoggedCommand>>,
}

impl CommandLog {
    pub fn new(file: Option<PathBuf>) -> Self {
        Self {
            file,
            entries: Mutex::new(Vec::new()),
        }
    }

    /// Keeps `entry`, its hidden string literals (`h'..'`) redacted as Kusto's logs do.
    pub fn record(&self, mut entry: LoggedCommand) {
        entry.csl = crate::lexer::redact_hidden(&entry.csl);
        if let Some(path) = &self.file {
            self.append(path, &entry);
        }
        if let Ok(mut entries) = self.entries.lock() {
            entries.push(entry);
        }
    }

    /// Keeps `entry` in the file only: texts run in-process are not requests, so
    /// [`CommandLog::entries`] (what came over HTTP) does not list them.
    pub fn record_in_process(&self, mut entry: LoggedCommand) {
        entry.csl = crate::lexer::redact_hidden(&entry.csl);
        if let Some(path) = &self.file {
            self.append(path, &entry);
        }
    }

    /// One `write` per line with O_APPEND, so several processes can share the file.
    fn append(&self, path: &PathBuf, entry: &LoggedCommand) {
        let Ok(mut line) = serde_json::to_string(entry) else {
            return;
        };
        line.push('\n');
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "cannot append to the command log");
        }
    }

    pub fn entries(&self) -> Vec<LoggedCommand> {
        self.entries.lock().map(|e| e.clone()).unwrap_or_default()
    }
}
