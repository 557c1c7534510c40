//! Built-in sources: `web`, `app`, `payment`, `syslog`. Each turns a build-time PRNG into
//! [`Record`]s drawn from realistic value pools; the few fields that must vary per event
//! (`bytes`, `latency_ms`, `amount`) are dynamic values backed by quantile tables.

use spate_core::rng::Rng;

use crate::dist::{Dist, NumGen};
use crate::program::{Builder, Dyn, Record, Val, WebParts};
use crate::template::CompiledTemplate;
use crate::values::*;

/// How one source makes records.
pub(crate) enum SourceGen {
    Web { bytes: Dyn, latency: Dyn },
    App,
    Payment { amount: Dyn },
    Syslog,
    Template(CompiledTemplate),
}

fn table(b: &mut Builder, rng: &mut Rng, g: NumGen) -> Dyn {
    let decimals = g.decimals;
    let table = b.add_table(&g.quantiles(rng));
    Dyn::Num { table, decimals }
}

impl SourceGen {
    /// The built-in source `name`, if there is one.
    pub(crate) fn builtin(name: &str, b: &mut Builder, rng: &mut Rng) -> Option<SourceGen> {
        Some(match name {
            "web" => SourceGen::Web {
                // Response sizes and latencies are heavy-tailed: lognormal.
                bytes: table(
                    b,
                    rng,
                    NumGen::new(
                        120.0,
                        5_000_000.0,
                        0,
                        Dist::LogNormal { median: 3_200.0, sigma: 1.3 },
                    ),
                ),
                latency: table(
                    b,
                    rng,
                    NumGen::new(0.08, 30_000.0, 3, Dist::LogNormal { median: 18.0, sigma: 1.1 }),
                ),
            },
            "app" => SourceGen::App,
            "payment" => SourceGen::Payment {
                amount: table(
                    b,
                    rng,
                    NumGen::new(0.5, 20_000.0, 2, Dist::LogNormal { median: 42.0, sigma: 1.0 }),
                ),
            },
            "syslog" => SourceGen::Syslog,
            _ => return None,
        })
    }

    pub(crate) fn record(&self, rng: &mut Rng) -> Record {
        match self {
            SourceGen::Web { bytes, latency } => web(rng, *bytes, *latency),
            SourceGen::App => app(rng),
            SourceGen::Payment { amount } => payment(rng, *amount),
            SourceGen::Syslog => syslog(rng),
            SourceGen::Template(t) => t.record(rng),
        }
    }
}

// ---- web ----

const PATHS: [&str; 32] = [
    "/",
    "/api/v1/items?id={id}",
    "/static/js/main.{hash}.js",
    "/static/css/app.{hash}.css",
    "/api/v1/cart",
    "/products/{slug}",
    "/favicon.ico",
    "/images/products/{id}-800w.webp",
    "/api/v1/users/{id}",
    "/search?q={q}&page={page}",
    "/login",
    "/api/v1/recommendations?user={id}&limit=20",
    "/cart",
    "/category/{cat}",
    "/checkout",
    "/healthz",
    "/api/v2/orders/{id}",
    "/robots.txt",
    "/blog/{slug}",
    "/sitemap.xml",
    "/api/graphql",
    "/account/settings",
    "/api/v1/auth/token",
    "/static/fonts/inter-var.woff2",
    "/logout",
    "/apple-touch-icon.png",
    "/about",
    "/.env",
    "/wp-login.php",
    "/api/v1/items/{id}/reviews?sort=recent",
    "/contact",
    "/.git/config",
];

const SLUGS: [&str; 12] = [
    "wireless-noise-cancelling-headphones",
    "merino-wool-crew-sweater",
    "stainless-steel-water-bottle-1l",
    "ergonomic-office-chair",
    "4k-usb-c-monitor-27",
    "trail-running-shoes",
    "cast-iron-skillet-12in",
    "how-we-cut-p99-latency-in-half",
    "release-notes-2026-10",
    "mechanical-keyboard-tkl",
    "organic-cotton-t-shirt",
    "smart-thermostat-gen3",
];

const CATEGORIES: [&str; 8] =
    ["electronics", "home-kitchen", "outdoor", "books", "fashion", "toys", "garden", "sports"];
const QUERIES: [&str; 10] = [
    "headphones",
    "usb+c+cable",
    "running+shoes",
    "coffee+grinder",
    "desk+lamp",
    "gift+card",
    "laptop+stand",
    "yoga+mat",
    "tent",
    "kindle",
];

const STATUS: [(u16, u32); 16] = [
    (200, 780),
    (201, 10),
    (204, 15),
    (206, 5),
    (301, 15),
    (302, 30),
    (304, 60),
    (400, 10),
    (401, 12),
    (403, 8),
    (404, 35),
    (429, 5),
    (500, 6),
    (502, 4),
    (503, 3),
    (504, 2),
];

const PROTOS: [(&str, u32); 3] = [("HTTP/1.1", 62), ("HTTP/2.0", 36), ("HTTP/1.0", 2)];

const REFERRERS: [(&str, u32); 10] = [
    ("-", 40),
    ("https://www.google.com/", 25),
    ("https://shop.example.com/", 12),
    ("https://www.bing.com/", 5),
    ("https://duckduckgo.com/", 4),
    ("https://t.co/", 3),
    ("https://www.facebook.com/", 3),
    ("https://shop.example.com/cart", 4),
    ("https://news.ycombinator.com/", 2),
    ("https://www.reddit.com/", 2),
];

const USER_AGENTS: [(&str, u32); 14] = [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", 30),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", 12),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", 15),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", 6),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", 6),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", 6),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36", 9),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", 2),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 4),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 2),
    ("curl/8.11.0", 2),
    ("python-requests/2.32.3", 2),
    ("Go-http-client/2.0", 2),
    ("okhttp/4.12.0", 2),
];

const USERS: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];

fn web_path(rng: &mut Rng) -> (usize, String) {
    let i = zipf_rank(rng, PATHS.len(), 1.05);
    let mut p = PATHS[i].to_string();
    if p.contains("{id}") {
        let id = zipf_rank(rng, 5000, 0.8) + 1;
        p = p.replace("{id}", &id.to_string());
    }
    if p.contains("{hash}") {
        p = p.replace("{hash}", &hexs(rng, 8));
    }
    if p.contains("{slug}") {
        p = p.replace("{slug}", upick(rng, &SLUGS));
    }
    if p.contains("{cat}") {
        p = p.replace("{cat}", upick(rng, &CATEGORIES));
    }
    if p.contains("{q}") {
        p = p.replace("{q}", upick(rng, &QUERIES));
        p = p.replace("{page}", &(rng.below(5) + 1).to_string());
    }
    (i, p)
}

fn web(rng: &mut Rng, bytes_dyn: Dyn, latency_dyn: Dyn) -> Record {
    let (rank, path) = web_path(rng);
    let raw = PATHS[rank];
    let method: &'static str = match raw {
        "/api/v1/auth/token" | "/api/graphql" => "POST",
        "/checkout" | "/login" if rng.chance(0.5) => "POST",
        "/api/v1/cart" => wpick(rng, &[("GET", 60), ("POST", 25), ("PUT", 10), ("DELETE", 5)]),
        "/api/v2/orders/{id}" => wpick(rng, &[("GET", 80), ("PATCH", 15), ("DELETE", 5)]),
        _ => wpick(rng, &[("GET", 96), ("HEAD", 2), ("OPTIONS", 1), ("POST", 1)]),
    };
    let status: u16 = match raw {
        "/.env" | "/wp-login.php" | "/.git/config" => wpick(rng, &[(404, 90), (403, 10)]),
        "/healthz" => 200,
        p if p.starts_with("/static/") => wpick(rng, &[(200, 70), (304, 30)]),
        _ if method == "POST" => {
            wpick(rng, &[(200, 70), (201, 15), (400, 5), (401, 4), (422, 3), (500, 3)])
        }
        _ => wpick(rng, &STATUS),
    };
    let ip = if rng.chance(0.12) { public_ipv6(rng) } else { public_ipv4(rng) };
    let proto = wpick(rng, &PROTOS);
    let referrer = rng.pick_weighted(&REFERRERS).to_string();
    let ua = rng.pick_weighted(&USER_AGENTS).to_string();
    let user = if rng.chance(0.03) { rng.pick(&USERS).to_string() } else { "-".to_string() };
    let bytes: Option<Val> = match status {
        204 | 304 => None,
        _ if method == "HEAD" || method == "OPTIONS" => None,
        301 | 302 => Some(n(rng.range_i64(150, 180))),
        s if s >= 400 => Some(n(rng.range_i64(150, 600))),
        _ => Some(Val::Dyn(bytes_dyn)),
    };
    let host = format!("web-{:02}", rng.range_i64(1, 12));
    let fields = vec![
        ("client_ip".to_string(), s(&ip)),
        ("method".to_string(), s(method)),
        ("path".to_string(), s(&path)),
        ("protocol".to_string(), s(proto)),
        ("status".to_string(), n(status)),
        ("bytes".to_string(), bytes.clone().unwrap_or_else(|| n(0))),
        ("referrer".to_string(), s(&referrer)),
        ("user_agent".to_string(), s(&ua)),
        ("latency_ms".to_string(), Val::Dyn(latency_dyn)),
    ];
    // MSG: a combined-log style line, then the latency.
    let mut msg = vec![Val::Str(format!("{ip} - {user} \"{method} {path} {proto}\" {status} "))];
    match &bytes {
        Some(v) => msg.push(v.clone()),
        None => msg.push(Val::Str("-".into())),
    }
    // The user agent as its own piece: rendered once in the blob, shared by variants.
    msg.push(Val::Str(format!(" \"{referrer}\" \"")));
    msg.push(Val::Str(ua.clone()));
    msg.push(Val::Str("\" latency_ms=".into()));
    msg.push(Val::Dyn(latency_dyn));
    Record {
        fields,
        facility: 23, // local7, where nginx/apache usually log
        severity: match status {
            500.. => 3,
            400.. => 4,
            _ => 6,
        },
        host,
        app: "nginx".into(),
        procid: rng.range_i64(900, 65_000) as u32,
        msgid: "access".into(),
        msg,
        web: Some(WebParts { ip, user, method, path, proto, status, bytes, referrer, ua }),
    }
}

// ---- app ----

const SERVICES: [&str; 10] = [
    "checkout",
    "cart",
    "catalog",
    "auth",
    "search",
    "inventory",
    "notification",
    "gateway",
    "recommendation",
    "user-profile",
];
const CLASSES: [&str; 10] = [
    "OrderController",
    "CartService",
    "HttpClient",
    "KafkaPublisher",
    "SessionFilter",
    "RepositoryImpl",
    "RetryPolicy",
    "CacheManager",
    "HealthIndicator",
    "PaymentGatewayClient",
];
const LEVELS: [(&str, u32); 4] = [("INFO", 80), ("DEBUG", 8), ("WARN", 8), ("ERROR", 4)];

fn app_message(rng: &mut Rng, level: &str) -> String {
    let id = rng.range_i64(1000, 999_999);
    let ms = zipf_rank(rng, 2000, 0.9) + 1;
    let svc = upick(rng, &SERVICES);
    let m: &[&str] = match level {
        "DEBUG" => &[
            "loaded {n} rows from inventory in {ms} ms",
            "SQL: select id, sku, qty from stock where sku = ?",
            "feature flag \"new-checkout\" evaluated to true for user {id}",
            "cache get product:{id} hit=false",
        ],
        "WARN" => &[
            "slow query took {ms} ms: \"select id, total from orders where customer_id = ?\"",
            "retrying call to {svc} (attempt {n}/3)",
            "connection pool near capacity: {n}/50 in use",
            "deprecated endpoint /api/v1/cart used by client {id}",
        ],
        "ERROR" => &[
            "upstream {svc} returned 503 Service Unavailable",
            "failed to charge card: gateway timeout after 30000 ms",
            "java.lang.IllegalStateException: cart {id} already checked out",
            "payload rejected: unexpected token '}' at line 1 column {n}",
        ],
        _ => &[
            "request completed in {ms} ms",
            "user {id} logged in",
            "cache miss for key product:{id}",
            "order {id} created",
            "published event OrderCreated to topic orders",
            "scheduled job cleanup-sessions finished in {ms} ms",
            "consumer group rebalanced, assigned partitions [0, 3, 7]",
            "token refreshed for client web-frontend",
        ],
    };
    rng.pick(m)
        .replace("{id}", &id.to_string())
        .replace("{ms}", &ms.to_string())
        .replace("{svc}", svc)
        .replace("{n}", &rng.range_i64(1, 49).to_string())
}

fn app(rng: &mut Rng) -> Record {
    let service = upick(rng, &SERVICES);
    let level = wpick(rng, &LEVELS);
    let logger = format!("com.shop.{}.{}", service.replace('-', ""), rng.pick(&CLASSES));
    let message = app_message(rng, level);
    let host = format!("{service}-{}-{}", hexs(rng, 9), alnum(rng, 5));
    let fields = vec![
        ("service".to_string(), s(service)),
        ("level".to_string(), s(level)),
        ("logger".to_string(), s(&logger)),
        ("message".to_string(), s(&message)),
    ];
    let msg = vec![Val::Str(format!(
        "{} {} {}",
        kv_text("level", level),
        kv_text("logger", &logger),
        kv_text("msg", &message)
    ))];
    Record {
        fields,
        facility: 16, // local0
        severity: match level {
            "DEBUG" => 7,
            "WARN" => 4,
            "ERROR" => 3,
            _ => 6,
        },
        host,
        app: service.to_string(),
        procid: 1,
        msgid: "app".into(),
        msg,
        web: None,
    }
}

// ---- payment ----

const CURRENCIES: [(&str, u32); 6] =
    [("USD", 48), ("EUR", 26), ("GBP", 11), ("CAD", 6), ("AUD", 5), ("CHF", 4)];
const METHODS: [(&str, u32); 6] = [
    ("card", 60),
    ("paypal", 14),
    ("apple_pay", 10),
    ("google_pay", 7),
    ("bank_transfer", 5),
    ("klarna", 4),
];
const STATES: [(&str, u32); 7] = [
    ("captured", 45),
    ("authorized", 28),
    ("pending", 8),
    ("declined", 8),
    ("refunded", 5),
    ("failed", 3),
    ("voided", 3),
];

fn payment(rng: &mut Rng, amount: Dyn) -> Record {
    let order = format!("ord_{}", alnum(rng, 14));
    let pay = format!("pay_{}", alnum(rng, 20));
    let customer = format!("cus_{}", alnum(rng, 12));
    let currency = wpick(rng, &CURRENCIES);
    let method = wpick(rng, &METHODS);
    let state = wpick(rng, &STATES);
    let fields = vec![
        ("order_id".to_string(), s(&order)),
        ("payment_id".to_string(), s(&pay)),
        ("customer_id".to_string(), s(&customer)),
        ("amount".to_string(), Val::Dyn(amount)),
        ("currency".to_string(), s(currency)),
        ("method".to_string(), s(method)),
        ("state".to_string(), s(state)),
    ];
    let mut msg = vec![Val::Str(format!("payment {state} "))];
    msg.extend(logfmt_msg(&fields));
    Record {
        fields,
        facility: 17, // local1
        severity: if matches!(state, "declined" | "failed") { 4 } else { 6 },
        host: format!("payments-{:02}", rng.range_i64(1, 6)),
        app: "payments".into(),
        procid: rng.range_i64(300, 40_000) as u32,
        msgid: "payment".into(),
        msg,
        web: None,
    }
}

// ---- syslog ----

const SYS_HOSTS: [&str; 8] =
    ["bastion-1", "db-01", "db-02", "web-03", "worker-12", "mail-1", "ci-runner-4", "lb-edge-2"];
const FACILITY_NAMES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];
const SEVERITY_NAMES: [&str; 8] =
    ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];

fn syslog(rng: &mut Rng) -> Record {
    let ip = public_ipv4(rng);
    let port = rng.range_i64(32_768, 60_999);
    let user = upick(rng, &["deploy", "ubuntu", "root", "ci", "backup"]);
    let pid = rng.range_i64(200, 99_999);
    // (app, facility, severity, message, weight)
    let entries: Vec<(&str, u8, u8, String, u32)> = vec![
        ("sshd", 4, 6, format!("Accepted publickey for {user} from {ip} port {port} ssh2: ED25519 SHA256:{}", alnum(rng, 43)), 10),
        ("sshd", 4, 5, format!("Failed password for invalid user {} from {ip} port {port} ssh2", rng.pick(&["admin", "test", "oracle", "pi"])), 14),
        ("sshd", 4, 6, format!("Connection closed by authenticating user root {ip} port {port} [preauth]"), 8),
        ("sshd", 10, 6, format!("pam_unix(sshd:session): session opened for user {user}(uid=1000) by (uid=0)"), 6),
        ("CRON", 9, 6, format!("({user}) CMD (/usr/local/bin/backup.sh --incremental > /dev/null 2>&1)"), 10),
        ("CRON", 10, 6, "pam_unix(cron:session): session closed for user root".to_string(), 8),
        ("kernel", 0, 4, format!("[UFW BLOCK] IN=eth0 OUT= MAC=0a:1b:2c:3d:4e:5f SRC={ip} DST=10.0.4.17 LEN=60 TOS=0x00 PREC=0x00 TTL=49 ID=0 DF PROTO=TCP SPT={port} DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0"), 12),
        ("kernel", 0, 3, format!("Out of memory: Killed process {pid} (java) total-vm:8123456kB, anon-rss:4012345kB, file-rss:0kB"), 1),
        ("kernel", 0, 6, "EXT4-fs (nvme0n1p1): mounted filesystem with ordered data mode. Quota mode: none.".to_string(), 2),
        ("systemd", 3, 6, "Started Daily apt download activities.".to_string(), 6),
        ("systemd", 3, 6, "Starting Cleanup of Temporary Directories...".to_string(), 4),
        ("systemd", 3, 3, "nginx.service: Main process exited, code=exited, status=1/FAILURE".to_string(), 2),
        ("postfix", 2, 6, format!("connect from unknown[{ip}]"), 5),
        ("postfix", 2, 6, format!("{}: to=<{user}@example.org>, relay=mx.example.org[{ip}]:25, delay=0.42, status=sent (250 2.0.0 OK)", hexs(rng, 10).to_uppercase()), 5),
        ("ntpd", 12, 6, format!("adjusting local clock by {:.6}s", rng.f64() * 0.01), 3),
    ];
    let weights: Vec<u32> = entries.iter().map(|e| e.4).collect();
    let (app, facility, severity, message, _) = entries[rng.weighted(&weights)].clone();
    let host = upick(rng, &SYS_HOSTS);
    let fields = vec![
        ("host".to_string(), s(host)),
        ("app".to_string(), s(app)),
        ("pid".to_string(), n(pid)),
        ("facility".to_string(), s(FACILITY_NAMES[facility as usize])),
        ("severity".to_string(), s(SEVERITY_NAMES[severity as usize])),
        ("message".to_string(), s(&message)),
    ];
    Record {
        fields,
        facility,
        severity,
        host: host.to_string(),
        app: app.to_string(),
        procid: pid as u32,
        msgid: "-".into(),
        msg: vec![Val::Str(message)],
        web: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips_parse() {
        let mut rng = Rng::new(3);
        for _ in 0..2000 {
            let v4: std::net::Ipv4Addr = public_ipv4(&mut rng).parse().unwrap();
            assert!(!v4.is_private() && !v4.is_loopback() && !v4.is_documentation());
            let _: std::net::Ipv6Addr = public_ipv6(&mut rng).parse().unwrap();
        }
    }
}
