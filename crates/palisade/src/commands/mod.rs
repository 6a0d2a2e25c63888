//! One file per subcommand.

pub(crate) mod audit;
pub(crate) mod doctor;
pub(crate) mod inspect;
pub(crate) mod install;
pub(crate) mod logs;
pub(crate) mod pin;
pub(crate) mod policy;
pub(crate) mod run;
pub(crate) mod scan;
pub(crate) mod secret;
pub(crate) mod serve;
pub(crate) mod token;
pub(crate) mod wrap;
