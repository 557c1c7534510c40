//! Starting a run: compile the events, open the sink, build the rings, spawn the flush thread
//! and one pinned worker per core.

use std::sync::Arc;

use crate::batch::Batch;
use crate::config::RunConfig;
use crate::error::EngineError;
use crate::flush::{self, FlushSetup};
use crate::ring::ring;
use crate::run::{Run, RunShared};
use crate::sink::config::SinkConfig;
use crate::sink::kafka::{EmbeddedBroker, KafkaSink};
use crate::sink::{NullSink, Sink, WriterSink};
use crate::worker::{self, WorkerSetup};
use spate_core::breaker::Breaker;
use spate_gen::{EventSpec, RunId};
use spate_limit::{self, LimiterFactory};

/// Options that are not part of the config file.
#[derive(Default, Clone)]
pub struct StartOptions {
    /// An embedded broker shared with the caller (e.g. `spate broker`, tests); otherwise one is
    /// started when the Kafka sink has no brokers.
    pub embedded: Option<Arc<EmbeddedBroker>>,
    /// Builds each worker's limiter; default: the Redis global limiter if configured, else a local
    /// one.
    pub limiter: Option<LimiterFactory>,
    /// The run's id; default: a random one.
    pub run_id: Option<RunId>,
    /// The clock of the run (tests drive a whole run with a `FakeClock`); default: monotonic.
    pub clock: Option<Arc<dyn spate_core::clock::Clock>>,
    /// Where the run's rare changes are told (breaker transitions, limiter fallbacks): the
    /// audit trail. Default: nobody.
    pub notes: Option<spate_core::notes::SharedNotes>,
}

/// Starts a run and returns at once; `Run::join` waits for it.
pub fn start(config: RunConfig, opts: StartOptions) -> Result<Run, EngineError> {
    // Avro framing (and any Schema Registry call) is settled before anything starts.
    let wire = crate::avro::wire::prepare(&config)?;
    let spec = Arc::new(EventSpec::build(&wire.events)?);
    let workers = config.threads.get();
    // A worker's pool: a full ring, one batch being filled, one being written by the sink.
    let pool = config.ring_capacity.get() + 2;
    let bytes_hint = config.events.size.unwrap_or(256).max(64) + 64;
    // Large events get fewer per batch, so that every batch buffer fits the memory budget.
    let plan = crate::memory::plan(
        config.memory_budget,
        workers,
        pool,
        bytes_hint,
        config.batch_size.get(),
    )
    .map_err(|why| {
        EngineError::Config(spate_core::ConfigError::new(
            "memory_budget",
            why,
            "raise memory_budget, or lower size, threads or ring_capacity",
        ))
    })?;
    let batch_size = plan.batch_size;
    let run_id = opts.run_id.unwrap_or_else(RunId::random);
    let notes = opts.notes.clone().unwrap_or_else(spate_core::notes::none);
    // The sink's circuit breaker: Kafka's produce calls, PostgreSQL's transactions.
    let breaker =
        (config.sink.is_kafka() || config.sink.is_postgres()).then(|| Arc::new(Breaker::new()));
    let spill = config.backpressure == crate::config::Backpressure::Spill;
    let budget = config.max_inflight_bytes();
    let shared =
        RunShared::new(run_id, workers, config.rate, budget, breaker.clone(), opts.clock.clone());
    let tracer = match &config.tracing {
        Some(t) => Some(crate::spans::Tracer::start(
            t.clone(),
            shared.wall,
            config.sink.to_string(),
            run_id.to_string(),
        )?),
        None => None,
    };
    let shared = Arc::new(
        shared
            .with_tracer(tracer)
            .with_ends(config.duration, config.drain_timeout)
            .with_warmup(config.warmup)
            .with_memory_budget(config.memory_budget),
    );
    let mode = if config.rate == spate_limit::Rate::Max { 1 } else { 0 };
    shared.limiter.mode.store(mode, std::sync::atomic::Ordering::Relaxed);
    // The Redis global limiter's lease thread starts now, before anything needs unwinding; it
    // sets the limiter mode to "redis" and stops by itself when the workers' limiters drop.
    let redis_factory = match (&opts.limiter, &config.redis) {
        (None, Some(r)) => Some(
            spate_limit::redis::RedisLimiter::start(
                r,
                shared.limiter.clone(),
                shared.clock.clone(),
                notes.clone(),
            )?
            .factory(),
        ),
        _ => None,
    };

    let sink: Box<dyn Sink> = match &config.sink {
        SinkConfig::Stdout => match spec.avro_schema() {
            Some(schema) => {
                Box::new(WriterSink::stdout().avro_container(schema, config.avro.codec)?)
            }
            None => Box::new(WriterSink::stdout()),
        },
        SinkConfig::Null => Box::new(NullSink),
        SinkConfig::File(p) => match spec.avro_schema() {
            Some(schema) => {
                Box::new(WriterSink::file(p.path())?.avro_container(schema, config.avro.codec)?)
            }
            None => Box::new(WriterSink::file(p.path())?),
        },
        SinkConfig::Tcp(t) => {
            Box::new(crate::sink::tcp::TcpSink::open(&t.address, t.framing, shared.clock.clone())?)
        }
        SinkConfig::Postgres(t) => Box::new(
            crate::sink::postgres::PgSink::open(
                t,
                spec.source_names(),
                &run_id.to_string(),
                typed_columns(t, &wire.events)?,
                shared.clock.clone(),
            )?
            .with_breaker(
                breaker.clone().expect("postgres has a breaker"),
                t.breaker,
                spate_core::breaker::BreakerReporter::new("postgres", notes.clone()),
                shared.clock.clone(),
                spill,
            ),
        ),
        SinkConfig::Kafka(k) => {
            let embedded = match (&k.brokers, opts.embedded.clone()) {
                (Some(_), _) => None,
                (None, Some(e)) => Some(e),
                (None, None) => Some(Arc::new(EmbeddedBroker::start(1)?)),
            };
            let mut sink = KafkaSink::open(
                k,
                shared.clone(),
                breaker.clone().expect("kafka has a breaker"),
                spate_core::breaker::BreakerReporter::new("kafka", notes.clone()),
                spec.source_names(),
                embedded,
                config.batch_size.get(),
            )?;
            sink.spill_when_open = spill;
            sink.set_key_header(wire.key_header);
            Box::new(sink)
        }
    };

    // The duration is generation time: it starts now that the sink is ready (opening it may
    // take up to a few seconds against a broker that does not answer). Stored before the flush
    // and worker threads start, so their spawn publishes it.
    let ready = shared.clock.now_ns();
    // (0 means "not yet" in `sink_ready_ns`; a fake clock may really be at 0.)
    shared.sink_ready_ns.store(ready.max(1), std::sync::atomic::Ordering::Relaxed);
    if let Some(d) = config.duration {
        shared
            .deadline_ns
            .store(ready.saturating_add(d.as_nanos() as u64), std::sync::atomic::Ordering::Relaxed);
    }

    let cores =
        if config.pin { core_affinity::get_core_ids().unwrap_or_default() } else { Vec::new() };
    let mut rings = Vec::with_capacity(workers);
    let mut returns_tx = Vec::with_capacity(workers);
    let mut worker_ends = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (tx, rx) = ring::<Batch>(config.ring_capacity.get());
        let (ret_tx, ret_rx) = ring::<Batch>(pool);
        rings.push(rx);
        returns_tx.push(ret_tx);
        worker_ends.push((tx, ret_rx));
    }

    let flush_shared = shared.clone();
    let flush = std::thread::Builder::new()
        .name("spate-flush".into())
        .spawn(move || {
            flush::run(FlushSetup { shared: flush_shared, rings, returns: returns_tx, sink })
        })
        .map_err(|source| EngineError::Spawn { name: "spate-flush".into(), source })?;

    let deadline_ns = Some(shared.deadline_ns.load(std::sync::atomic::Ordering::Relaxed))
        .filter(|&d| d != u64::MAX);
    let factory: LimiterFactory = opts.limiter.clone().or(redis_factory).unwrap_or_else(|| {
        let (rate, burst) = (config.rate, config.burst);
        let catch_up = config.catch_up;
        Arc::new(move |w, n, now| spate_limit::local::local(rate, burst, catch_up, w, n, now))
    });
    let mut handles = Vec::with_capacity(workers);
    for (i, (tx, ret_rx)) in worker_ends.into_iter().enumerate() {
        let count = config
            .count
            .map(|c| c.get() / workers as u64 + u64::from((i as u64) < c.get() % workers as u64));
        let f = factory.clone();
        let setup = WorkerSetup {
            index: i,
            core: if cores.is_empty() { None } else { Some(cores[i % cores.len()]) },
            spec: spec.clone(),
            shared: shared.clone(),
            to_flush: tx,
            returns: ret_rx,
            limiter: Box::new(move |now| f(i, workers, now)),
            count,
            deadline_ns,
            batch_size,
            pool,
            backpressure: config.backpressure,
            bytes_hint,
        };
        let name = format!("spate-w{i}");
        let h = std::thread::Builder::new().name(name.clone()).spawn(move || worker::run(setup));
        match h {
            Ok(h) => handles.push(h),
            Err(source) => {
                // Unwind: stop what started, then report.
                shared.lifecycle.stop();
                shared.lifecycle.generation_ended(workers - i);
                shared.lifecycle.workers_ended(workers - i);
                for h in handles {
                    let _ = h.join();
                }
                let _ = flush.join();
                return Err(EngineError::Spawn { name, source });
            }
        }
    }
    // Last: it ends when the run's counters are final, which needs the threads above.
    let memory = std::thread::Builder::new()
        .name("spate-memory".into())
        .spawn({
            let shared = shared.clone();
            move || crate::memory::watch(&shared.memory, || shared.lifecycle.is_finished())
        })
        .ok();
    Ok(Run { shared, config, workers: handles, flush: Some(flush), memory })
}

/// The typed layout's columns for `events` (from their Avro record schemas), None for the
/// JSONB layout.
fn typed_columns(
    t: &crate::sink::postgres::PgConfig,
    events: &spate_gen::EventConfig,
) -> Result<Option<Vec<crate::sink::postgres::typed::Column>>, EngineError> {
    if !t.typed {
        return Ok(None);
    }
    let mut avro = events.clone();
    avro.format = spate_gen::Format::Avro;
    let spec = EventSpec::build(&avro)?;
    let records: Vec<(&str, &str)> = spec
        .source_names()
        .iter()
        .enumerate()
        .filter_map(|(i, n)| Some((n.as_str(), spec.avro_record(i)?)))
        .collect();
    Ok(Some(crate::sink::postgres::typed::columns(&records)?))
}
