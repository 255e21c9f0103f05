//! Command-line interface: one file per verb.
