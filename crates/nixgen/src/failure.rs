//! The library's error where nothing branches on the failure: a message and
//! the error that caused it. `{:#}` prints the whole chain on one line,
//! "message: cause: cause", the way the binary prints every error; a plain
//! `{}` prints the first link only, so that a caller wrapping a `Failure`
//! (or the binary's error type) does not repeat its causes.

use std::error::Error;
use std::fmt;

type Source = Box<dyn Error + Send + Sync + 'static>;

/// A failure, with the error that caused it when there is one.
#[derive(Debug)]
pub struct Failure(Repr);

#[derive(Debug)]
enum Repr {
    Message {
        message: String,
        source: Option<Source>,
    },
    /// A typed error passed on as it is: its message and causes are the
    /// failure's, so the chain reads as if it had not been wrapped.
    Wrapped(Source),
}

impl Failure {
    /// A failure with no cause underneath.
    pub fn new(message: impl fmt::Display) -> Self {
        Self(Repr::Message {
            message: message.to_string(),
            source: None,
        })
    }

    /// `message`, caused by `source`.
    pub fn caused(message: impl fmt::Display, source: impl Error + Send + Sync + 'static) -> Self {
        Self(Repr::Message {
            message: message.to_string(),
            source: Some(Box::new(source)),
        })
    }

    /// A typed error that needs no message of its own.
    pub fn wrap(error: impl Error + Send + Sync + 'static) -> Self {
        Self(Repr::Wrapped(Box::new(error)))
    }

    /// The first error of type `T` in the chain: lets a caller tell a typed
    /// failure (a refused run, say) from the others.
    pub fn downcast_ref<T: Error + 'static>(&self) -> Option<&T> {
        let mut cur = self.inner();
        while let Some(e) = cur {
            if let Some(t) = e.downcast_ref::<T>() {
                return Some(t);
            }
            // `source()` steps over a wrapped error; its type still counts.
            cur = match e.downcast_ref::<Self>() {
                Some(f) => f.inner(),
                None => e.source(),
            };
        }
        None
    }

    /// The error this one holds, wrapped or as its cause.
    fn inner(&self) -> Option<&(dyn Error + 'static)> {
        match &self.0 {
            Repr::Message { source, .. } => source.as_deref().map(|e| e as _),
            Repr::Wrapped(e) => Some(e.as_ref()),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Message { message, .. } => f.write_str(message)?,
            Repr::Wrapped(e) => write!(f, "{e}")?,
        }
        if f.alternate() {
            let mut cause = self.source();
            while let Some(c) = cause {
                write!(f, ": {c}")?;
                cause = c.source();
            }
        }
        Ok(())
    }
}

impl Error for Failure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.0 {
            Repr::Message { source, .. } => source.as_deref().map(|e| e as _),
            Repr::Wrapped(e) => e.source(),
        }
    }
}

/// Puts a message in front of an error, or turns a `None` into a failure.
pub trait Context<T> {
    fn context(self, message: impl fmt::Display) -> Result<T, Failure>;

    /// As [`Context::context`], building the message only on failure.
    fn with_context<M: fmt::Display>(self, message: impl FnOnce() -> M) -> Result<T, Failure>;
}

impl<T, E: Error + Send + Sync + 'static> Context<T> for Result<T, E> {
    fn context(self, message: impl fmt::Display) -> Result<T, Failure> {
        self.map_err(|e| Failure::caused(message, e))
    }

    fn with_context<M: fmt::Display>(self, message: impl FnOnce() -> M) -> Result<T, Failure> {
        self.map_err(|e| Failure::caused(message(), e))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, message: impl fmt::Display) -> Result<T, Failure> {
        self.ok_or_else(|| Failure::new(message))
    }

    fn with_context<M: fmt::Display>(self, message: impl FnOnce() -> M) -> Result<T, Failure> {
        self.ok_or_else(|| Failure::new(message()))
    }
}

/// The typed errors `?` passes on unchanged: a run's failures to start,
/// whose own message says it all.
macro_rules! pass_on {
    ($($t:ty),* $(,)?) => {
        $(impl From<$t> for Failure {
            fn from(e: $t) -> Self {
                Self::wrap(e)
            }
        })*
    };
}

pass_on!(
    crate::config::ConfigError,
    crate::python::aliases::AliasError,
    crate::registry::FetchError,
    crate::render::RenderError,
    crate::tree::TreeError,
    crate::trust::signature::KeysError,
    crate::update::NoKeysPinned,
    crate::update::NoTree,
    crate::update::TooManyRemovals,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer typed")]
    struct Typed(#[source] std::io::Error);

    fn io() -> std::io::Error {
        std::io::Error::other("disk")
    }

    #[test]
    fn chains_read_as_one_line() {
        let e = Failure::caused("reading x", Typed(io()));
        assert_eq!(format!("{e:#}"), "reading x: outer typed: disk");
        assert_eq!(e.to_string(), "reading x");
        let wrapped = Failure::wrap(Typed(io()));
        assert_eq!(format!("{wrapped:#}"), "outer typed: disk");
        let nested = Err::<(), _>(wrapped).context("top").err();
        let nested = nested.map(|e| format!("{e:#}"));
        assert_eq!(nested.as_deref(), Some("top: outer typed: disk"));
        let none = None::<()>.with_context(|| "absent").err();
        assert_eq!(none.map(|e| format!("{e:#}")).as_deref(), Some("absent"));
    }

    #[test]
    fn finds_typed_errors_in_the_chain() {
        let e = Failure::caused("top", Failure::wrap(Typed(io())));
        assert!(e.downcast_ref::<Typed>().is_some());
        assert!(e.downcast_ref::<std::io::Error>().is_some());
        assert!(Failure::new("x").downcast_ref::<Typed>().is_none());
    }
}
