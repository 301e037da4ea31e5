//! The identifiers the module's parts share: a leaf module, so state, channels, the network
//! model and jobs can name each other's subjects without depending on each other.

/// Identifies one AT channel of the module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u64);

/// Identifies one job for as long as the process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);
