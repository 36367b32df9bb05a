//! Readable parse errors: the parser reports a syntax error as an ASCII-art excerpt of the
//! document (` --> 1:2 | ... ^--- = expected selection`); callers get one sentence instead,
//! `syntax error at line 1, column 2: expected selection`, with the position in `locations`.
//! Applied by [`super::errors::refusal`] to every refusal before execution.

use async_graphql::ServerError;

/// One line for a multi-line parser message; other errors are kept.
pub fn readable(mut error: ServerError) -> ServerError {
    if !error.message.contains('\n') {
        return error;
    }
    let what = error
        .message
        .lines()
        .rev()
        .find_map(|line| line.trim_start().strip_prefix("= "))
        .map(str::trim)
        .filter(|what| !what.is_empty())
        .unwrap_or("the document is not valid GraphQL")
        .to_string();
    error.message = match error.locations.first() {
        Some(position) => format!(
            "syntax error at line {}, column {}: {what}",
            position.line, position.column
        ),
        None => format!("syntax error: {what}"),
    };
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ascii_art_becomes_one_sentence() {
        let error = match async_graphql::parser::parse_query("{ agents(") {
            Err(error) => ServerError::from(error),
            Ok(_) => panic!("parsed"),
        };
        assert!(error.message.contains('\n'), "{}", error.message);
        let readable = readable(error);
        assert!(!readable.message.contains('\n'), "{}", readable.message);
        assert!(
            readable
                .message
                .starts_with("syntax error at line 1, column 10: expected"),
            "{}",
            readable.message
        );
    }
}
