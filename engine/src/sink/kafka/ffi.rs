//! Every call from the Kafka sink into librdkafka's C API, in one place: cached topic handles,
//! the produce call, and reading a delivery report's persistence status.
//!
//! Why not the rdkafka crate's `BaseProducer::send`: it names the topic per record, which costs
//! a `CString` allocation and a locked topic lookup inside librdkafka every time, and it
//! allocates an `OwnedHeaders` per record. With a cached handle (`RD_KAFKA_VTYPE_RKT`) and a
//! header list built straight into librdkafka, a record costs neither (docs/adr/007).

use std::ffi::{c_char, c_void, CString};

use rdkafka::bindings::{
    rd_kafka_header_add, rd_kafka_headers_destroy, rd_kafka_headers_new, rd_kafka_message_status,
    rd_kafka_msg_status_t, rd_kafka_producev, rd_kafka_resp_err_t, rd_kafka_topic_destroy,
    rd_kafka_topic_new, rd_kafka_topic_t, rd_kafka_vtype_t::*, RD_KAFKA_MSG_F_COPY,
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
    pub(super) fn new<C: ProducerContext>(
        producer: &BaseProducer<C>,
        topics: &[String],
    ) -> Result<Self, EngineError> {
        let mut handles = Self { rkts: Vec::with_capacity(topics.len()) };
        for t in topics {
            let name = CString::new(t.as_str()).map_err(|e| EngineError::Kafka(e.to_string()))?;
            // SAFETY: the client pointer is live for the producer's lifetime, which outlives
            // these handles (`KafkaSink` drops its handles first); `name` is a valid C string
            // that librdkafka copies; a null conf means defaults.
            let rkt = unsafe {
                rd_kafka_topic_new(
                    producer.client().native_ptr(),
                    name.as_ptr(),
                    std::ptr::null_mut(),
                )
            };
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
    pub(super) fn produce<C: ProducerContext>(
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
        let (kp, kl) =
            key.map_or((std::ptr::null_mut(), 0), |k| (k.as_ptr() as *mut c_void, k.len()));
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
                        name.as_ptr().cast::<c_char>(),
                        name.len() as isize,
                        value.as_ptr().cast::<c_void>(),
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

/// Blocks the flush thread until librdkafka has something for it (a delivery report, an
/// error) or a deadline passes, without spinning.
///
/// Why: the rdkafka crate's `poll(timeout)` loops until its deadline, and converts what is left
/// of it to whole milliseconds for librdkafka: once less than 1 ms is left it polls with 0 in a
/// busy loop (measured: a fifth of all samples of a max-rate run in `clock_gettime` on the flush
/// thread, a core the broker thread needed). Instead librdkafka writes one byte into a pipe when
/// its main queue gets an event after having been served (`rd_kafka_queue_io_event_enable`;
/// one wake-up per non-polling period), the sink waits on the pipe with `poll(2)` and a
/// deadline, and then serves the queue without blocking.
pub(crate) struct QueueWake {
    queue: *mut rdkafka::bindings::rd_kafka_queue_t,
    read_fd: std::os::fd::OwnedFd,
    /// Kept open for librdkafka to write to; closed after `drop` disables the event.
    _write_fd: std::os::fd::OwnedFd,
}

// SAFETY: the queue handle is a reference-counted librdkafka object whose calls are
// thread-safe; the struct is only moved with the sink that owns it.
unsafe impl Send for QueueWake {}

impl QueueWake {
    /// Must be dropped before `producer` (it holds a reference to the producer's main queue).
    pub(super) fn new<C: ProducerContext>(producer: &BaseProducer<C>) -> std::io::Result<Self> {
        use std::os::fd::{FromRawFd, OwnedFd};
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
        let (read_fd, write_fd) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: the client pointer is live for the producer's lifetime, which outlives this
        // struct (see `new`'s doc); the returned queue is released in `drop`.
        let queue =
            unsafe { rdkafka::bindings::rd_kafka_queue_get_main(producer.client().native_ptr()) };
        if queue.is_null() {
            return Err(std::io::Error::other("librdkafka has no main queue"));
        }
        use std::os::fd::AsRawFd;
        // SAFETY: `queue` is live; librdkafka copies the 1-byte payload and writes it to the
        // write end, which stays open until `drop` disables the event first.
        unsafe {
            rdkafka::bindings::rd_kafka_queue_io_event_enable(
                queue,
                write_fd.as_raw_fd(),
                b"1".as_ptr().cast::<c_void>(),
                1,
            );
        };
        Ok(Self { queue, read_fd, _write_fd: write_fd })
    }

    /// Events waiting in the queue.
    #[inline]
    pub(super) fn pending(&self) -> usize {
        // SAFETY: `queue` is live until `drop`; the call takes the queue's own lock.
        unsafe { rdkafka::bindings::rd_kafka_queue_length(self.queue) }
    }

    /// Waits until librdkafka signals an event or `timeout` passes, then empties the pipe.
    /// Callers check `pending` first: an event queued while the queue was being served is not
    /// signalled again.
    pub(super) fn wait(&self, timeout: std::time::Duration) {
        use std::os::fd::AsRawFd;
        let mut p = libc::pollfd { fd: self.read_fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // Rounded up: a wait shorter than asked would make the caller spin.
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd, count 1.
        unsafe { libc::poll(&raw mut p, 1, ms) };
        let mut buf = [0u8; 64];
        // SAFETY: reads into a local buffer of the given length from our own non-blocking fd.
        while unsafe {
            libc::read(self.read_fd.as_raw_fd(), buf.as_mut_ptr().cast::<c_void>(), buf.len())
        } > 0
        {}
    }
}

impl Drop for QueueWake {
    fn drop(&mut self) {
        // SAFETY: the queue is live; disabling (fd -1) stops librdkafka writing to the pipe
        // before its descriptors close, and the reference from `new` is released exactly once.
        unsafe {
            rdkafka::bindings::rd_kafka_queue_io_event_enable(self.queue, -1, std::ptr::null(), 0);
            rdkafka::bindings::rd_kafka_queue_destroy(self.queue);
        }
        // The pipe's descriptors close after this, with the fields.
    }
}
