//! stub
#![allow(missing_docs)]
#[derive(Debug)] pub struct Producer;
#[derive(Debug)] pub struct ProducerConfig;
#[derive(Debug)] pub struct NewRecord;
#[derive(Debug)] pub struct RecordAck;
