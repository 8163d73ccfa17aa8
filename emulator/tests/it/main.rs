//! Integration tests: every emulator operation driven through the real aws-sdk-rust clients.

mod support;

mod accessanalyzer;
mod config;
mod cross_service;
mod ec2;
mod guardduty;
mod iam;
mod organizations;
mod protocol_errors;
mod s3;
mod securityhub;
mod sts;
