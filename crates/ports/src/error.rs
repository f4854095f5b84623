//! The pieces every layer's opaque error variants are built from (the policy is the crate
//! documentation's "Errors" section).

use std::borrow::Cow;
use std::error::Error;
use std::fmt;

/// The cause an opaque variant keeps: any error, boxed. A message alone converts too
/// (`"text".into()`, `String::into`), for a cause that has no error value of its own.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// What the code was doing when `source` failed: a level of its own in the cause chain, so
/// the log reads `cannot connect to the database: <the driver's error>: <its cause>` without
/// any level being flattened into another's text.
#[derive(Debug)]
pub struct Context {
    doing: Cow<'static, str>,
    source: BoxError,
}

impl Context {
    pub fn new(doing: impl Into<Cow<'static, str>>, source: impl Into<BoxError>) -> Self {
        Self {
            doing: doing.into(),
            source: source.into(),
        }
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.doing)
    }
}

impl Error for Context {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}

/// `error` and then each of its sources in turn, outermost first.
pub fn chain<'a>(
    error: &'a (dyn Error + 'static),
) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(error), |&level| level.source())
}

/// Every level of the cause chain of `error`, outermost first, joined by `": "`.
pub fn chain_text(error: &(dyn Error + 'static)) -> String {
    chain(error)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// Whether two causes read the same at every level. Causes have no equality of their own;
/// this is what comparing two opaque errors means (in tests, mostly): the same variant with
/// the same story.
pub fn same_cause(a: &BoxError, b: &BoxError) -> bool {
    let (a, b): (&(dyn Error + 'static), &(dyn Error + 'static)) = (&**a, &**b);
    chain(a)
        .map(ToString::to_string)
        .eq(chain(b).map(ToString::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_is_a_level_of_its_own_above_its_cause() {
        let inner: BoxError = "connection refused".into();
        let error = Context::new("cannot connect to the database", inner);
        assert_eq!(error.to_string(), "cannot connect to the database");
        assert_eq!(
            chain_text(&error),
            "cannot connect to the database: connection refused"
        );
        assert_eq!(chain(&error).count(), 2);
    }

    #[test]
    fn causes_are_the_same_when_every_level_reads_the_same() {
        let a: BoxError = Box::new(Context::new("x", "y"));
        let b: BoxError = Box::new(Context::new("x", "y"));
        let c: BoxError = Box::new(Context::new("x", "z"));
        let flat: BoxError = "x: y".into();
        assert!(same_cause(&a, &b));
        assert!(!same_cause(&a, &c));
        assert!(!same_cause(&a, &flat));
    }
}
