//! Every call from the Kafka sink into librdkafka's C API, in one place: cached topic handles,
//! the produce call, and reading a delivery report's persistence status.
//!
//! Why not the rdkafka crate's `BaseProducer::send`: it names the topic per record, which costs
//! a `CString` allocation and a locked topic lookup inside librdkafka every time, and it
//! allocates an `OwnedHeaders` per record. With a cached handle (`RD_KAFKA_VTYPE_RKT`) and a
//! header list built straight into librdkafka, a record costs neither (docs/adr/007).

use std::ffi::{c_char, c_void, CString};

use rdkafka::bindings::{
    rd_kafka_header_add, rd_kafka_headers_destroy, rd_kafka_headers_new, rd_kafka_message_status, rd_kafka_msg_status_t, rd_kafka_producev,
    rd_kafka_resp_err_t, rd_kafka_topic_destroy, rd_kafka_topic_new, rd_kafka_topic_t, rd_kafka_vtype_t::*, RD_KAFKA_MSG_F_COPY,
};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::BorrowedMessage;
use rdkafka::producer::{BaseProducer, Producer, ProducerContext};

use crate::error::EngineError;

/// A record's headers as (name, value) pairs; empty means none.
pub(crate) type HeaderPairs<'a> = &'a [(&'a str, &'a [u8])];

/// librdkafka topic handles, one per topic index, created once per producer.
pub(crate) struct TopicHandles {
    rkts: Vec<*mut rd_kafka_topic_t>,
}

// SAFETY: librdkafka topic handles are thread-safe reference-counted objects (rdkafka.h: "the
// returned handle may be used from any thread"); the sink only moves them with itself.
unsafe impl Send for TopicHandles {}

impl TopicHandles {
    pub fn new<C: ProducerContext>(producer: &BaseProducer<C>, topics: &[String]) -> Result<Self, EngineError> {
        let mut handles = Self { rkts: Vec::with_capacity(topics.len()) };
        for t in topics {
            let name = CString::new(t.as_str()).map_err(|e| EngineError::Kafka(e.to_string()))?;
            // SAFETY: the client pointer is live for the producer's lifetime, which outlives
            // these handles (`KafkaSink` drops its handles first); `name` is a valid C string
            // that librdkafka copies; a null conf means defaults.
            let rkt = unsafe { rd_kafka_topic_new(producer.client().native_ptr(), name.as_ptr(), std::ptr::null_mut()) };
            if rkt.is_null() {
                return Err(EngineError::Kafka(format!("cannot create a topic handle for `{t}`")));
            }
            handles.rkts.push(rkt); // released by Drop, also on an early return above
        }
        Ok(handles)
    }

    /// One record, copied by librdkafka (`RD_KAFKA_MSG_F_COPY`), carrying `opaque` back to the
    /// delivery callback. `partition` -1 lets the partitioner choose.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn produce<C: ProducerContext>(
        &self,
        producer: &BaseProducer<C>,
        topic: usize,
        partition: i32,
        payload: &[u8],
        key: Option<&[u8]>,
        opaque: usize,
        headers: HeaderPairs<'_>,
    ) -> Result<(), RDKafkaErrorCode> {
        let rk = producer.client().native_ptr();
        let rkt = self.rkts[topic];
        let (kp, kl) = key.map_or((std::ptr::null_mut(), 0), |k| (k.as_ptr() as *mut c_void, k.len()));
        let (vp, vl) = (payload.as_ptr() as *mut c_void, payload.len());
        // Why the block below is sound: `rk` and `rkt` are live (see `new`); every pointer/length
        // pair points into a slice that outlives the call, and librdkafka copies value, key and
        // header names and values before returning (`RD_KAFKA_MSG_F_COPY`, `rd_kafka_header_add`
        // copies). The header list is owned by librdkafka after a successful produce and
        // destroyed by us after a failed one; a null list means none (the rdkafka crate's own
        // `send` passes one). The variadic arguments follow rdkafka.h's RD_KAFKA_V_* macros
        // (int32 partition, int msgflags, size_t lengths) and end with RD_KAFKA_VTYPE_END. The
        // opaque is a plain integer librdkafka hands back untouched in the delivery report.
        // SAFETY: as just said: live handles, borrowed slices outliving the call, owned headers.
        let err = unsafe {
            let hdrs = if headers.is_empty() {
                std::ptr::null_mut()
            } else {
                let h = rd_kafka_headers_new(headers.len());
                for (name, value) in headers {
                    rd_kafka_header_add(
                        h,
                        name.as_ptr() as *const c_char,
                        name.len() as isize,
                        value.as_ptr() as *const c_void,
                        value.len() as isize,
                    );
                }
                h
            };
            let err = rd_kafka_producev(
                rk,
                RD_KAFKA_VTYPE_RKT,
                rkt,
                RD_KAFKA_VTYPE_PARTITION,
                partition,
                RD_KAFKA_VTYPE_MSGFLAGS,
                RD_KAFKA_MSG_F_COPY,
                RD_KAFKA_VTYPE_VALUE,
                vp,
                vl,
                RD_KAFKA_VTYPE_KEY,
                kp,
                kl,
                RD_KAFKA_VTYPE_OPAQUE,
                opaque as *mut c_void,
                RD_KAFKA_VTYPE_HEADERS,
                hdrs,
                RD_KAFKA_VTYPE_END,
            );
            if err != rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && !hdrs.is_null() {
                rd_kafka_headers_destroy(hdrs);
            }
            err
        };
        if err == rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            Ok(())
        } else {
            Err(err.into())
        }
    }
}

impl Drop for TopicHandles {
    fn drop(&mut self) {
        for rkt in self.rkts.drain(..) {
            // SAFETY: each handle came from `rd_kafka_topic_new` and is released exactly once,
            // while the producer is still alive (see `KafkaSink`'s field order).
            unsafe { rd_kafka_topic_destroy(rkt) };
        }
    }
}

/// Takes back every record librdkafka holds, queued or in flight; their delivery reports come
/// back as purged on the next poll. Used when the drain time has run out.
pub(crate) fn purge<C: ProducerContext>(producer: &BaseProducer<C>) {
    use rdkafka::bindings::{RD_KAFKA_PURGE_F_INFLIGHT, RD_KAFKA_PURGE_F_QUEUE};
    purge_with(producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
}

/// Takes back only the records still queued locally (never sent, so never written): used to
/// empty a producer that is being replaced, so its queue does not hold the replacement up.
pub(crate) fn purge_queued<C: ProducerContext>(producer: &BaseProducer<C>) {
    purge_with(producer, rdkafka::bindings::RD_KAFKA_PURGE_F_QUEUE);
}

fn purge_with<C: ProducerContext>(producer: &BaseProducer<C>, flags: i32) {
    // SAFETY: the client pointer is live for the producer's lifetime; `rd_kafka_purge` is
    // thread-safe and only marks messages, whose reports are served by a later poll.
    unsafe { rdkafka::bindings::rd_kafka_purge(producer.client().native_ptr(), flags) };
}

/// True when a failed record's request may have reached the broker (its answer was lost), so
/// producing it again could write it twice.
pub(crate) fn possibly_persisted(m: &BorrowedMessage<'_>) -> bool {
    // SAFETY: `m.ptr()` is the live `rd_kafka_message_t` of a delivery report, valid for the
    // duration of the callback that lends `m`; the call only reads its status.
    let status = unsafe { rd_kafka_message_status(m.ptr()) };
    status == rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED
}
