//! sonnys-etl: nightly export of Sonny's Carwash Controls transactions into PostgreSQL.

pub mod simulator;
