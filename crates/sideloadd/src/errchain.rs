//! One line for an error and its causes, each said once.
//!
//! Most errors here already put their cause in their own message
//! (`cannot read tokenFile /x: No such file or directory (os error 2)`) and
//! also return it from `source()`, so a plain walk down the chain, as
//! anyhow's `{:#}` does, repeats the cause. The walk below appends a cause
//! only when the text so far does not already contain it (a message may
//! carry its cause's whole chain, as the HTTP client's errors do, so the
//! cause is not necessarily at the end).

use std::error::Error;

/// `outer: inner: root`, without causes the message already carries.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cur = e.source();
    while let Some(cause) = cur {
        let text = cause.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cur = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::chain;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {path}: {source}")]
    struct Embeds {
        path: &'static str,
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("loading config")]
    struct Wraps(#[source] Embeds);

    #[derive(Debug, thiserror::Error)]
    #[error("starting")]
    struct Starting(#[source] std::io::Error);

    fn not_found() -> std::io::Error {
        std::io::Error::from(std::io::ErrorKind::NotFound)
    }

    #[test]
    fn a_cause_in_the_message_is_not_repeated() {
        let e = Embeds {
            path: "/x",
            source: not_found(),
        };
        let cause = not_found().to_string();
        assert_eq!(chain(&e), format!("cannot read /x: {cause}"));
        let wrapped = Wraps(e);
        assert_eq!(
            chain(&wrapped),
            format!("loading config: cannot read /x: {cause}")
        );
        assert_eq!(chain(&wrapped).matches(&cause).count(), 1);
    }

    #[test]
    fn a_cause_not_in_the_message_is_appended() {
        let cause = not_found().to_string();
        assert_eq!(chain(&Starting(not_found())), format!("starting: {cause}"));
    }
}
