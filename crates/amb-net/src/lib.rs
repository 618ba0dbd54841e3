//! The Ambients peer over libp2p (`spec/network.md`): a node that gossips signed
//! events on one topic per program, checks every event it receives before it
//! stores or forwards it, syncs programs it lacks from peers that hold them, and
//! deploys programs to the network.

pub mod behaviour;
pub mod config;
pub mod delegation;
pub mod deploy;
mod driver;
pub mod execution;
pub mod faults;
pub mod identity;
pub mod ingest;
mod intake;
pub mod node;
mod recent;
mod serve;
mod source;
pub mod sync;
pub mod value;
pub mod wire;

pub use config::{NodeConfig, NodeTable};
pub use deploy::{DeployLimits, Deployed, deploy};
pub use faults::FaultConfig;
pub use ingest::{Ingest, IngestLimits, Outcome, Refusal};
pub use node::{NetError, NodeEvent, NodeHandle, NodeInfo, ProgramStatus, Ready, start};
pub use sync::{Fetched, fetch};
pub use value::{ProgramValue, value};
