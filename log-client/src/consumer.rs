//! stub
#![allow(missing_docs)]
#[derive(Debug)] pub struct Consumer;
#[derive(Debug)] pub struct ConsumerConfig;
#[derive(Debug)] pub struct ConsumerMode;
#[derive(Debug)] pub struct ReceivedRecord;
