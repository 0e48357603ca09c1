//! The CMDB side of the engine: resources and their change logs ([`resources`]), business-set
//! scopes ([`scope`]) and the resource watch ([`watch`]).

pub mod resources;
pub mod scope;
pub mod watch;
