//! The open-file limit, raised at start from its soft value to the hard one (as Go's runtime does for every
//! program). Each OTLP listener may hold `max_connections` sockets (512 by default) besides the write-ahead
//! log's segments and the Delta writer's files, and the common soft limit of 1024 would run out first: a
//! descriptor that cannot be opened fails a request or a read-back instead. The hard limit is what the
//! administrator allows; a child that `otlake run -- CMD` starts inherits the raised soft limit.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// The soft open-file limit before and after; `None` is unlimited.
#[derive(Debug, PartialEq, Eq)]
pub struct Raised {
    pub from: Option<u64>,
    pub to: Option<u64>,
}

/// Raises the soft open-file limit to the hard limit.
pub fn raise() -> rustix::io::Result<Raised> {
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        )?;
    }
    Ok(Raised {
        from: limit.current,
        to: getrlimit(Resource::Nofile).current,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lowered_soft_limit_is_raised_to_the_hard_limit() {
        let hard = getrlimit(Resource::Nofile).maximum;
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(256),
                maximum: hard,
            },
        )
        .expect("lower the soft limit");
        let raised = raise().expect("raise");
        assert_eq!(raised.from, Some(256));
        assert_eq!(raised.to, hard);
        assert_eq!(getrlimit(Resource::Nofile).current, hard);
    }
}
