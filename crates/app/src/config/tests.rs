use super::*;

fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

fn load(pairs: &[(&str, &str)]) -> Result<Settings> {
    Settings::resolve(None, lookup(pairs), true)
}

/// A complete Stripe-mode configuration (test key).
const STRIPE: &[(&str, &str)] = &[
    ("DATABASE_URL", "postgres://postgres:pw@127.0.0.1:5432/lms"),
    ("JWT_SECRET", "3f9c2a7d1e8b4c6a9f0d2e5b7a1c3e8f"),
    ("STRIPE_SECRET_KEY", "sk_test_abc"),
    ("STRIPE_WEBHOOK_SECRET", "whsec_old, whsec_new"),
];

/// A live-key configuration that passes every live-only check.
const LIVE: &[(&str, &str)] = &[
    ("DATABASE_URL", "postgres://lms:pw@db:5432/lms"),
    ("JWT_SECRET", "3f9c2a7d1e8b4c6a9f0d2e5b7a1c3e8f"),
    ("STRIPE_SECRET_KEY", "sk_live_abc"),
    ("STRIPE_WEBHOOK_SECRET", "whsec_live"),
    (
        "STRIPE_SUCCESS_URL",
        "https://learn.example.com/payment/success?session_id={CHECKOUT_SESSION_ID}",
    ),
    (
        "STRIPE_CANCEL_URL",
        "https://learn.example.com/payment/cancel",
    ),
    ("CORS_ORIGINS", "https://learn.example.com"),
];

/// `base` with `overrides` replacing variables (an empty override value removes one).
fn with(
    base: &[(&'static str, &'static str)],
    overrides: &[(&'static str, &'static str)],
) -> Vec<(&'static str, &'static str)> {
    let mut pairs: Vec<_> = base
        .iter()
        .filter(|(k, _)| !overrides.iter().any(|(o, _)| o == k))
        .copied()
        .collect();
    pairs.extend(overrides.iter().filter(|(_, v)| !v.is_empty()).copied());
    pairs
}

fn stripe_config(settings: &Settings) -> &StripeConfig {
    match &settings.mode {
        Mode::Stripe(config) => config,
        Mode::Demo(_) => panic!("expected Stripe mode"),
    }
}

#[test]
fn stripe_mode_keeps_the_production_defaults() {
    let settings = load(STRIPE).unwrap();
    assert_eq!(settings.http.host, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(settings.http.port, 4000);
    assert!(settings.http.cookie_secure);
    assert!(settings.database.run_migrations);
    assert_eq!(settings.database.pool_size, 10);
    assert_eq!(
        settings.database.group_commit,
        Some(GROUP_COMMIT_LANES),
        "deliveries grouped unless turned off"
    );
    assert_eq!(settings.log_format, LogFormat::Json);
    assert!(matches!(settings.database.url, Database::Postgres(_)));
    assert_eq!(
        settings.http.cors_origins,
        vec![DEFAULT_CORS_ORIGIN.to_owned()]
    );
    let stripe = stripe_config(&settings);
    assert_eq!(stripe.success_url, FRONTEND_SUCCESS_URL);
    assert_eq!(stripe.cancel_url, FRONTEND_CANCEL_URL);
    assert_eq!(stripe.secret_key.mode(), KeyMode::Test);
    assert_eq!(stripe.api_base.as_str(), "https://api.stripe.com/");
    assert_eq!(stripe.webhook_secrets.len(), 2);
    assert!(settings.auth.jwt_secret.is_some());
    assert_eq!(
        settings.mode.payments_mode(),
        lms_ports::PaymentsMode::StripeTest
    );
    assert_eq!(settings.limits.rate_limits, RateLimits::default());
    assert_eq!(settings.metrics_addr, DEFAULT_METRICS_ADDR.parse().ok());
    for off in ["", "off", "OFF"] {
        assert_eq!(
            load(
                &with(STRIPE, &[("METRICS_ADDR", "x")])
                    .into_iter()
                    .map(|(k, v)| if k == "METRICS_ADDR" {
                        (k, off)
                    } else {
                        (k, v)
                    })
                    .collect::<Vec<_>>()
            )
            .unwrap()
            .metrics_addr,
            None,
            "{off:?}"
        );
    }
    assert_eq!(settings.limits.password_hashing, HashingLimits::default());
}

#[test]
fn nothing_set_is_the_offline_demo() {
    let settings = load(&[]).unwrap();
    let Mode::Demo(demo) = &settings.mode else {
        panic!("expected the demo");
    };
    assert_eq!(demo.sandbox_port, DEFAULT_SANDBOX_PORT);
    assert_eq!(demo.sandbox_host, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(demo.sandbox_public_url, None);
    assert!(demo.seed);
    assert_eq!(demo.success_url, None);
    assert_eq!(
        settings.database.url,
        Database::Sqlite("sqlite://data/lms.db".to_owned())
    );
    assert_eq!(settings.http.host, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert!(settings.auth.jwt_secret.is_none());
    assert!(!settings.http.cookie_secure);
    assert_eq!(settings.log_format, LogFormat::Text);
    assert_eq!(
        settings.mode.payments_mode(),
        lms_ports::PaymentsMode::Sandbox
    );
}

#[test]
fn an_explicit_demo_takes_production_like_values() {
    let settings = load(&[
        ("APP_MODE", "demo"),
        ("SANDBOX_PORT", "0"),
        ("SEED_DEMO", "false"),
        ("COOKIE_SECURE", "true"),
        ("HOST", "0.0.0.0"),
        ("JWT_SECRET", "3f9c2a7d1e8b4c6a9f0d2e5b7a1c3e8f"),
        (
            "STRIPE_SUCCESS_URL",
            "http://x.io/ok?s={CHECKOUT_SESSION_ID}",
        ),
        ("DATABASE_URL", "postgresql://u@h/db"),
        ("HTTP_WORKERS", "2"),
    ])
    .unwrap();
    let Mode::Demo(demo) = &settings.mode else {
        panic!("expected the demo");
    };
    assert_eq!(demo.sandbox_port, 0);
    assert!(!demo.seed);
    assert!(settings.http.cookie_secure);
    assert_eq!(settings.http.host, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(
        demo.success_url.as_deref(),
        Some("http://x.io/ok?s={CHECKOUT_SESSION_ID}")
    );
    assert!(matches!(settings.database.url, Database::Postgres(_)));
    assert_eq!(settings.http.workers, Some(2));
}

#[test]
fn production_like_settings_without_a_key_refuse_to_guess_the_mode() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("DATABASE_URL", "postgres://lms:pw@db:5432/lms")],
            "DATABASE_URL (PostgreSQL)",
        ),
        (&[("HOST", "0.0.0.0")], "HOST (not loopback)"),
        (
            &[("SANDBOX_HOST", "0.0.0.0")],
            "SANDBOX_HOST (not loopback)",
        ),
        (
            &[("JWT_SECRET", "3f9c2a7d1e8b4c6a9f0d2e5b7a1c3e8f")],
            "JWT_SECRET",
        ),
        (
            &[("SECRET_KEY", "3f9c2a7d1e8b4c6a9f0d2e5b7a1c3e8f")],
            "JWT_SECRET",
        ),
        (
            &[("STRIPE_WEBHOOK_SECRET", "whsec_x")],
            "STRIPE_WEBHOOK_SECRET",
        ),
        (&[("COOKIE_SECURE", "true")], "COOKIE_SECURE"),
        (
            &[("STRIPE_API_BASE", "https://api.stripe.com")],
            "STRIPE_API_BASE",
        ),
        (&[("TRUSTED_PROXIES", "10.0.0.1")], "TRUSTED_PROXIES"),
    ];
    for (pairs, named) in cases {
        let err = load(pairs).unwrap_err();
        assert_eq!(err.variable, "APP_MODE", "{pairs:?}");
        assert!(err.problem.contains(named), "{pairs:?}: {err}");
        assert!(
            err.problem.contains("APP_MODE=demo") && err.problem.contains("STRIPE_SECRET_KEY"),
            "{err}"
        );
        assert!(
            !err.to_string().contains("pw@"),
            "the URL's password leaked: {err}"
        );
    }
    // Loopback and SQLite are what a laptop has: still the demo.
    for pairs in [
        &[("HOST", "127.0.0.1")][..],
        &[("DATABASE_URL", "sqlite://x.db")],
        &[("PORT", "9000")],
    ] {
        assert!(load(pairs).unwrap().mode.is_demo(), "{pairs:?}");
    }
}

#[test]
fn a_config_file_is_production_like_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "[http]\nport = 7000\n").unwrap();
    let err = Settings::resolve(Some(&path), lookup(&[]), true).unwrap_err();
    assert_eq!(err.variable, "APP_MODE");
    assert!(err.problem.contains("a configuration file"), "{err}");
}

#[test]
fn the_mode_switch_is_checked() {
    type Case = (
        Vec<(&'static str, &'static str)>,
        &'static str,
        &'static str,
    );
    let cases: &[Case] = &[
        (
            with(STRIPE, &[("APP_MODE", "demo")]),
            "APP_MODE",
            "STRIPE_SECRET_KEY is set",
        ),
        (
            vec![("APP_MODE", "stripe")],
            "STRIPE_SECRET_KEY",
            "required",
        ),
        (vec![("APP_MODE", "production")], "APP_MODE", "stripe"),
        (vec![("APP_MODE", "")], "APP_MODE", "empty"),
        (
            vec![("APP_MODE", "demo"), ("STRIPE_WEBHOOK_SECRET", "whsec_x")],
            "STRIPE_WEBHOOK_SECRET",
            "demo",
        ),
        (
            with(STRIPE, &[("SEED_DEMO", "true")]),
            "SEED_DEMO",
            "APP_MODE=demo",
        ),
        (
            with(STRIPE, &[("SANDBOX_PORT", "0")]),
            "SANDBOX_PORT",
            "APP_MODE=demo",
        ),
        (
            with(STRIPE, &[("SANDBOX_HOST", "127.0.0.1")]),
            "SANDBOX_HOST",
            "APP_MODE=demo",
        ),
        (
            with(STRIPE, &[("SANDBOX_PUBLIC_URL", "http://localhost:12111")]),
            "SANDBOX_PUBLIC_URL",
            "APP_MODE=demo",
        ),
    ];
    for (pairs, variable, says) in cases {
        let err = load(pairs).unwrap_err();
        assert_eq!(err.variable, *variable, "{pairs:?}: {err}");
        assert!(err.problem.contains(says), "{pairs:?}: {err}");
    }
    assert!(!load(&with(STRIPE, &[("APP_MODE", "STRIPE")]))
        .unwrap()
        .mode
        .is_demo());
}

#[test]
fn a_build_without_the_demo_refuses_demo_mode() {
    for pairs in [&[][..], &[("APP_MODE", "demo")]] {
        let err = Settings::resolve(None, lookup(pairs), false).unwrap_err();
        assert_eq!(err.variable, "APP_MODE");
        assert!(err.problem.contains("`demo` feature"), "{err}");
    }
    assert!(Settings::resolve(None, lookup(STRIPE), false).is_ok());
}

#[test]
fn database_urls_need_an_explicit_scheme() {
    let cases = [
        ("postgres://u@h/db", None),
        ("postgresql://u@h/db", None),
        ("postgres://u:pw@h:5432/db?sslmode=require", None),
        ("postgres://u:pw@h/db?sslmode=verify-full", None),
        ("sqlite://data/lms.db", Some("sqlite://data/lms.db")),
        ("sqlite:///tmp/x.db", Some("sqlite:///tmp/x.db")),
        ("sqlite::memory:", Some(":memory:")),
    ];
    for (raw, sqlite) in cases {
        let parsed = Database::parse(raw).unwrap();
        match sqlite {
            Some(target) => assert_eq!(parsed, Database::Sqlite(target.to_owned()), "{raw}"),
            None => assert!(matches!(parsed, Database::Postgres(_)), "{raw}"),
        }
    }
    let refused = [
        ("\"postgres://lms:pw@db:5432/lms\"", "quote"),
        ("'postgres://lms:pw@db/lms'", "quote"),
        ("postgres://lms:pw@db/lms\n", "white space"),
        (" postgres://lms:pw@db/lms", "white space"),
        ("data/lms.db", "must start with"),
        (":memory:", "must start with"),
        ("file:lms.db", "must start with"),
        ("mysql://x/y", "must start with"),
        ("sqlite://", "without a path"),
        ("postgres://lms:pw@db/lms?sslmode=sometimes", "sslmode"),
        (
            "postgres://lms:pw@db/lms?sslmode=verify-full&sslrootcert=/nonexistent.pem",
            "sslrootcert",
        ),
    ];
    for (raw, says) in refused {
        let err = Database::parse(raw).unwrap_err();
        assert_eq!(err.variable, "DATABASE_URL");
        assert!(err.problem.contains(says), "{raw:?}: {err}");
        assert!(!err.to_string().contains("pw@"), "{err}");
    }
    // A quoted URL read from the environment is refused before anything else looks at it.
    let err = load(&with(
        STRIPE,
        &[("DATABASE_URL", "\"postgres://lms:pw@db:5432/lms\"")],
    ))
    .unwrap_err();
    assert_eq!(err.variable, "DATABASE_URL");
    // In memory only for the demo.
    let err = load(&with(STRIPE, &[("DATABASE_URL", "sqlite::memory:")])).unwrap_err();
    assert!(err.problem.contains("APP_MODE=demo"), "{err}");
    assert!(load(&[("DATABASE_URL", "sqlite::memory:")])
        .unwrap()
        .database
        .url
        .is_memory());
}

#[test]
fn weak_session_keys_are_refused() {
    for weak in [
        JWT_SECRET_PLACEHOLDER,
        "short",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "abcdabcdabcdabcdabcdabcdabcdabcdabcd",
    ] {
        let err = load(&with(STRIPE, &[("JWT_SECRET", weak)])).unwrap_err();
        assert_eq!(err.variable, "JWT_SECRET", "{weak}");
        assert!(err.problem.contains("openssl rand"), "{err}");
        assert!(!err.to_string().contains(weak), "the key was echoed: {err}");
    }
}

#[test]
fn a_live_key_refuses_local_addresses_and_plain_cookies() {
    assert_eq!(
        load(LIVE).unwrap().mode.payments_mode(),
        lms_ports::PaymentsMode::StripeLive
    );
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("STRIPE_SUCCESS_URL", "")], "STRIPE_SUCCESS_URL"),
        (
            &[(
                "STRIPE_SUCCESS_URL",
                "http://127.0.0.1:3000/ok?s={CHECKOUT_SESSION_ID}",
            )],
            "STRIPE_SUCCESS_URL",
        ),
        (
            &[("STRIPE_CANCEL_URL", "http://localhost/cancel")],
            "STRIPE_CANCEL_URL",
        ),
        (
            &[(
                "CORS_ORIGINS",
                "https://learn.example.com,http://localhost:5173",
            )],
            "CORS_ORIGINS",
        ),
        (
            &[("CLIENT_URL", "http://[::1]:5173"), ("CORS_ORIGINS", "")],
            "CORS_ORIGINS",
        ),
        (
            &[("STRIPE_API_BASE", "http://stripe.internal")],
            "STRIPE_API_BASE",
        ),
        (&[("COOKIE_SECURE", "false")], "COOKIE_SECURE"),
    ];
    for (overrides, variable) in cases {
        let err = load(&with(LIVE, overrides)).unwrap_err();
        assert_eq!(err.variable, *variable, "{overrides:?}: {err}");
    }
    // The same local addresses are fine with a test key.
    let test_key = with(
        LIVE,
        &[
            ("STRIPE_SECRET_KEY", "rk_test_abc"),
            ("CORS_ORIGINS", "http://localhost:5173"),
        ],
    );
    assert!(load(&test_key).is_ok());
}

#[test]
fn invalid_or_missing_values_name_the_variable() {
    let stripe_cases: &[(&[(&str, &str)], &str)] = &[
        (&[("JWT_SECRET", "")], "JWT_SECRET"),
        (
            &[
                ("JWT_SECRET", "3f9c2a7d1e8b4c6a9f0d2e5b7a1c3e8f"),
                ("SECRET_KEY", "8f4d6b9a2c3f9c2a7d1e8b4c6a9f0d2e"),
            ],
            "JWT_SECRET",
        ),
        (&[("DATABASE_URL", "")], "DATABASE_URL"),
        (&[("STRIPE_SECRET_KEY", "pk_test_x")], "STRIPE_SECRET_KEY"),
        (&[("STRIPE_SECRET_KEY", " ")], "STRIPE_SECRET_KEY"),
        (
            &[("STRIPE_WEBHOOK_SECRET", "secret")],
            "STRIPE_WEBHOOK_SECRET",
        ),
        (
            &[("STRIPE_WEBHOOK_SECRET", "whsec_a,sk_test_b")],
            "STRIPE_WEBHOOK_SECRET",
        ),
        (&[("STRIPE_WEBHOOK_SECRET", "")], "STRIPE_WEBHOOK_SECRET"),
        (&[("STRIPE_WEBHOOK_SECRET", " , ")], "STRIPE_WEBHOOK_SECRET"),
        (&[("PORT", "eighty")], "PORT"),
        (&[("PORT", "70000")], "PORT"),
        (&[("HOST", "my-host")], "HOST"),
        (&[("DATABASE_POOL_SIZE", "0")], "DATABASE_POOL_SIZE"),
        (
            &[("DATABASE_STATEMENT_TIMEOUT", "fast")],
            "DATABASE_STATEMENT_TIMEOUT",
        ),
        (&[("DATABASE_LOCK_TIMEOUT", "5")], "DATABASE_LOCK_TIMEOUT"),
        (
            &[("DATABASE_GROUP_COMMIT", "sometimes")],
            "DATABASE_GROUP_COMMIT",
        ),
        (&[("DATABASE_GROUP_COMMIT", "0")], "DATABASE_GROUP_COMMIT"),
        (&[("DATABASE_GROUP_COMMIT", "65")], "DATABASE_GROUP_COMMIT"),
        (
            &[
                ("DATABASE_URL", "sqlite:///tmp/lms.db"),
                ("DATABASE_GROUP_COMMIT", "true"),
            ],
            "DATABASE_GROUP_COMMIT",
        ),
        (&[("COOKIE_SECURE", "maybe")], "COOKIE_SECURE"),
        (&[("LOG_FORMAT", "xml")], "LOG_FORMAT"),
        (&[("CORS_ORIGINS", "*")], "CORS_ORIGINS"),
        (&[("TRUSTED_PROXIES", "10.0.0.0/33")], "TRUSTED_PROXIES"),
        (&[("STRIPE_SUCCESS_URL", "not a url")], "STRIPE_SUCCESS_URL"),
        (
            &[("STRIPE_SUCCESS_URL", "https://x.io/no-placeholder")],
            "STRIPE_SUCCESS_URL",
        ),
        (&[("STRIPE_API_BASE", "ftp://x")], "STRIPE_API_BASE"),
        (&[("HTTP_WORKERS", "0")], "HTTP_WORKERS"),
        (&[("SHUTDOWN_TIMEOUT_SECS", "-1")], "SHUTDOWN_TIMEOUT_SECS"),
        (
            &[("PASSWORD_HASH_CONCURRENCY", "0")],
            "PASSWORD_HASH_CONCURRENCY",
        ),
        (
            &[("PASSWORD_HASH_MAX_WAIT", "soon")],
            "PASSWORD_HASH_MAX_WAIT",
        ),
        (&[("SIGN_IN_LIMIT_PER_IP", "10")], "SIGN_IN_LIMIT_PER_IP"),
        (
            &[("SIGN_IN_LIMIT_PER_EMAIL", "0/1m")],
            "SIGN_IN_LIMIT_PER_EMAIL",
        ),
        (
            &[("SIGN_UP_LIMIT_PER_IP", "5/never")],
            "SIGN_UP_LIMIT_PER_IP",
        ),
        (
            &[("GATEWAY_SYNC_MIN_INTERVAL", "x")],
            "GATEWAY_SYNC_MIN_INTERVAL",
        ),
        (
            &[("GATEWAY_SYNC_MIN_INTERVAL", "10m")],
            "GATEWAY_SYNC_MIN_INTERVAL",
        ),
        (&[("RECONCILE_INTERVAL", "sometimes")], "RECONCILE_INTERVAL"),
        (&[("RECONCILE_INTERVAL", "0s")], "RECONCILE_INTERVAL"),
        (&[("RECONCILE_INTERVAL", "2days")], "RECONCILE_INTERVAL"),
        (&[("RECONCILE_OLDER_THAN", "-1m")], "RECONCILE_OLDER_THAN"),
        (&[("RECONCILE_OLDER_THAN", "8days")], "RECONCILE_OLDER_THAN"),
        (&[("RECONCILE_OLDER_THAN", "off")], "RECONCILE_OLDER_THAN"),
        (&[("RECONCILE_BATCH", "0")], "RECONCILE_BATCH"),
        (&[("RECONCILE_BATCH", "501")], "RECONCILE_BATCH"),
        (&[("RECONCILE_RATE", "0")], "RECONCILE_RATE"),
        (&[("RECONCILE_RATE", "101")], "RECONCILE_RATE"),
        (&[("RECONCILE_RATE", "5/s")], "RECONCILE_RATE"),
        (
            &[("EVENT_PAYLOAD_RETENTION_DAYS", "0")],
            "EVENT_PAYLOAD_RETENTION_DAYS",
        ),
        (
            &[("EVENT_PAYLOAD_RETENTION_DAYS", "90d")],
            "EVENT_PAYLOAD_RETENTION_DAYS",
        ),
        (
            &[("AUTO_REFUND_DOUBLE_PAYMENTS", "maybe")],
            "AUTO_REFUND_DOUBLE_PAYMENTS",
        ),
    ];
    for (overrides, variable) in stripe_cases {
        let err = load(&with(STRIPE, overrides)).unwrap_err();
        assert_eq!(err.variable, *variable, "{overrides:?}: {err}");
        let line = err.to_string();
        assert!(!line.contains('\n'), "one line: {line}");
        for secret in ["sk_test_abc", "whsec_old", "3f9c2a7d1e8b", "pw@"] {
            assert!(!line.contains(secret), "{line}");
        }
    }
    let demo_cases: &[(&[(&str, &str)], &str)] = &[
        (&[("SANDBOX_PORT", "65536")], "SANDBOX_PORT"),
        (&[("SANDBOX_PORT", "x")], "SANDBOX_PORT"),
        (
            &[("APP_MODE", "demo"), ("SANDBOX_HOST", "everywhere")],
            "SANDBOX_HOST",
        ),
        (
            &[("SANDBOX_PUBLIC_URL", "localhost:12111")],
            "SANDBOX_PUBLIC_URL",
        ),
        (
            &[("SANDBOX_PUBLIC_URL", "ftp://localhost")],
            "SANDBOX_PUBLIC_URL",
        ),
        (&[("SANDBOX_PUBLIC_URL", "http://")], "SANDBOX_PUBLIC_URL"),
        (
            &[("SANDBOX_PUBLIC_URL", "http://localhost/?a=b")],
            "SANDBOX_PUBLIC_URL",
        ),
        (
            &[("SANDBOX_PUBLIC_URL", "http://localhost/#x")],
            "SANDBOX_PUBLIC_URL",
        ),
        (&[("SEED_DEMO", "sure")], "SEED_DEMO"),
        (&[("DATABASE_URL", "mongodb://x")], "DATABASE_URL"),
        (&[("STRIPE_CANCEL_URL", "/cancel")], "STRIPE_CANCEL_URL"),
        (
            &[("APP_MODE", "demo"), ("JWT_SECRET", "short")],
            "JWT_SECRET",
        ),
    ];
    for (pairs, variable) in demo_cases {
        let err = load(pairs).unwrap_err();
        assert_eq!(err.variable, *variable, "{pairs:?}: {err}");
    }
}

#[test]
fn a_stripe_key_makes_the_production_variables_required() {
    for missing in ["STRIPE_WEBHOOK_SECRET", "JWT_SECRET", "DATABASE_URL"] {
        let pairs: Vec<_> = STRIPE
            .iter()
            .filter(|(k, _)| *k != missing)
            .copied()
            .collect();
        let err = load(&pairs).unwrap_err();
        assert_eq!(err.variable, missing);
        assert!(err.problem.contains("required"), "{missing}: {err}");
    }
}

#[test]
fn environment_overrides_and_aliases() {
    let pairs = with(
        STRIPE,
        &[
            ("PORT", "9000"),
            ("RUN_MIGRATIONS", "false"),
            ("LOG_FORMAT", "pretty"),
            ("CLIENT_URL", "https://a.io, https://b.io"),
            ("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7"),
            ("DATABASE_STATEMENT_TIMEOUT", "3s"),
            ("SIGN_UP_LIMIT_PER_IP", "off"),
            ("SIGN_IN_LIMIT_PER_IP", "5/30s"),
        ],
    );
    let settings = load(&pairs).unwrap();
    assert_eq!(settings.http.port, 9000);
    assert!(!settings.database.run_migrations);
    assert_eq!(settings.log_format, LogFormat::Pretty);
    assert_eq!(
        settings.http.cors_origins,
        vec!["https://a.io".to_owned(), "https://b.io".to_owned()]
    );
    assert_eq!(settings.http.trusted_proxies.len(), 2);
    assert_eq!(settings.database.statement_timeout, Duration::from_secs(3));
    assert_eq!(settings.limits.rate_limits.sign_up_per_ip, None);
    assert_eq!(
        settings.limits.rate_limits.sign_in_per_ip,
        RateLimit::new(5, Duration::from_secs(30))
    );
    // The same value under both names is fine.
    let both = with(
        STRIPE,
        &[
            ("CORS_ORIGINS", "https://a.io"),
            ("CLIENT_URL", "https://a.io"),
        ],
    );
    assert!(load(&both).is_ok());
}

#[test]
fn the_file_sits_between_defaults_and_environment_and_refuses_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        "mode = \"demo\"\n[http]\nport = 7000\ncookie_secure = true\n[log]\nformat = \"pretty\"\n[sandbox]\nport = 7001\n",
    )
    .unwrap();
    let from_file = Settings::resolve(Some(&path), lookup(&[]), true).unwrap();
    assert_eq!(from_file.http.port, 7000);
    assert!(from_file.http.cookie_secure);
    assert_eq!(from_file.log_format, LogFormat::Pretty);
    assert!(matches!(&from_file.mode, Mode::Demo(demo) if demo.sandbox_port == 7001));
    let env_wins = Settings::resolve(Some(&path), lookup(&[("PORT", "7002")]), true).unwrap();
    assert_eq!(env_wins.http.port, 7002);

    for unknown in [
        "mode = \"demo\"\nprot = 1\n",
        "mode = \"demo\"\n[http]\nprot = 1\n",
        "port = 4000\n",
    ] {
        std::fs::write(&path, unknown).unwrap();
        let err = Settings::resolve(Some(&path), lookup(&[]), true).unwrap_err();
        assert_eq!(err.variable, "APP_CONFIG_FILE", "{unknown}");
        assert!(err.problem.contains("unknown field"), "{unknown}: {err}");
    }
    let missing = dir.path().join("absent.toml");
    let err = Settings::resolve(Some(&missing), lookup(&[]), true).unwrap_err();
    assert_eq!(err.variable, "APP_CONFIG_FILE");
}

#[test]
fn env_example_documents_every_variable_and_starts_offline() {
    let example = include_str!("../../../../.env.example");
    for variable in VARIABLES {
        for name in std::iter::once(&variable.env).chain(variable.aliases) {
            assert!(
                example.contains(&format!("{name}=")),
                "{name} is not in .env.example"
            );
        }
    }
    assert!(example.contains(JWT_SECRET_PLACEHOLDER));
    let pairs: Vec<(String, String)> = example
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    assert!(!pairs.is_empty());
    let settings = Settings::from_pairs(pairs).unwrap();
    assert!(settings.mode.is_demo());
    assert_eq!(
        settings.database.url,
        Database::Sqlite(DEFAULT_SQLITE_URL.to_owned())
    );
}

#[test]
fn debug_output_never_shows_secrets() {
    let settings = load(STRIPE).unwrap();
    let debug = format!("{settings:?}");
    for secret in [
        "3f9c2a7d1e8b",
        "sk_test_abc",
        "whsec_old",
        "postgres://postgres:pw@",
    ] {
        assert!(!debug.contains(secret), "{debug}");
    }
}

#[test]
fn the_demo_sandbox_can_listen_everywhere_and_link_to_its_published_address() {
    let settings = load(&[
        ("APP_MODE", "demo"),
        ("HOST", "0.0.0.0"),
        ("SANDBOX_HOST", "0.0.0.0"),
        ("SANDBOX_PUBLIC_URL", "http://localhost:12111/"),
    ])
    .unwrap();
    let Mode::Demo(demo) = &settings.mode else {
        panic!("expected the demo");
    };
    assert_eq!(demo.sandbox_host, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(
        demo.sandbox_public_url.as_deref(),
        Some("http://localhost:12111")
    );
}

#[test]
fn the_workers_default_on_in_both_modes_with_the_documented_values() {
    for settings in [load(STRIPE).unwrap(), load(&[]).unwrap()] {
        let workers = settings.workers;
        assert_eq!(workers, WorkerSettings::default());
        assert_eq!(workers.reconcile_every, Some(Duration::from_secs(5 * 60)));
        assert_eq!(workers.reconcile.older_than, Duration::from_secs(30 * 60));
        assert_eq!(workers.reconcile.batch, 50);
        assert_eq!(workers.reconcile.rate.get(), 5);
        assert_eq!(workers.prune_every, Some(Duration::from_secs(60 * 60)));
        assert_eq!(
            workers.payload_retention,
            Duration::from_secs(90 * 24 * 3600)
        );
        assert!(settings.use_cases.auto_refund_double_payments);
    }
}

#[test]
fn the_workers_and_double_payment_refunds_are_configurable() {
    let settings = load(&with(
        STRIPE,
        &[
            ("RECONCILE_INTERVAL", "30s"),
            ("RECONCILE_OLDER_THAN", "0s"),
            ("RECONCILE_BATCH", "500"),
            ("RECONCILE_RATE", "100"),
            ("EVENT_PAYLOAD_RETENTION_DAYS", "1"),
            ("AUTO_REFUND_DOUBLE_PAYMENTS", "false"),
            ("GATEWAY_SYNC_MIN_INTERVAL", "1s"),
        ],
    ))
    .unwrap();
    let workers = settings.workers;
    assert_eq!(workers.reconcile_every, Some(Duration::from_secs(30)));
    assert_eq!(workers.reconcile.older_than, Duration::ZERO);
    assert_eq!(workers.reconcile.batch, 500);
    assert_eq!(workers.reconcile.rate.get(), 100);
    assert_eq!(workers.payload_retention, Duration::from_secs(24 * 3600));
    assert!(!settings.use_cases.auto_refund_double_payments);
    // Both use-case settings at once: neither undoes the other.
    assert_eq!(
        settings.use_cases.gateway_sync_min_interval,
        time::Duration::seconds(1)
    );
    for off in ["off", "OFF"] {
        let settings = load(&with(STRIPE, &[("RECONCILE_INTERVAL", off)])).unwrap();
        assert_eq!(settings.workers.reconcile_every, None, "{off}");
        // A one-off `lms-app reconcile` still has its run settings.
        assert_eq!(settings.workers.reconcile, ReconcileRun::default());
    }
    let demo = load(&[("RECONCILE_INTERVAL", "off"), ("RECONCILE_RATE", "2")]).unwrap();
    assert!(demo.mode.is_demo());
    assert_eq!(demo.workers.reconcile_every, None);
    assert_eq!(demo.workers.reconcile.rate.get(), 2);

    // The file's [operations] table, overridden by the environment.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        "mode = \"demo\"\n[operations]\nreconcile_interval = \"off\"\nreconcile_batch = 7\nauto_refund_double_payments = false\n",
    )
    .unwrap();
    let from_file = Settings::resolve(Some(&path), lookup(&[]), true).unwrap();
    assert_eq!(from_file.workers.reconcile_every, None);
    assert_eq!(from_file.workers.reconcile.batch, 7);
    assert!(!from_file.use_cases.auto_refund_double_payments);
    let env_wins =
        Settings::resolve(Some(&path), lookup(&[("RECONCILE_BATCH", "9")]), true).unwrap();
    assert_eq!(env_wins.workers.reconcile.batch, 9);
}

#[test]
fn a_bad_worker_setting_says_what_is_accepted() {
    let err = load(&with(STRIPE, &[("RECONCILE_INTERVAL", "0s")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "RECONCILE_INTERVAL: must be a duration from 1s to 1day such as 5m, or off to run no background reconciler, got \"0s\""
    );
    let err = load(&with(STRIPE, &[("RECONCILE_RATE", "0")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "RECONCILE_RATE: must be a whole number from 1 to 100, got \"0\""
    );
}

#[test]
fn checkout_settings_reach_the_stripe_adapter_and_default_off() {
    use lms_stripe_http::{AdaptivePricing, TaxBehavior};
    let defaults = load(STRIPE).unwrap();
    assert_eq!(
        stripe_config(&defaults).checkout,
        CheckoutOptions::default()
    );
    assert!(!stripe_config(&defaults).checkout.allow_promotion_codes);
    assert_eq!(stripe_config(&defaults).checkout.automatic_tax, None);
    assert_eq!(
        stripe_config(&defaults).checkout.adaptive_pricing,
        AdaptivePricing::Auto
    );
    let settings = load(&with(
        STRIPE,
        &[
            ("STRIPE_ALLOW_PROMOTION_CODES", "true"),
            ("STRIPE_AUTOMATIC_TAX", "TRUE"),
            ("STRIPE_TAX_BEHAVIOR", "inclusive"),
            ("STRIPE_ADAPTIVE_PRICING", "off"),
        ],
    ))
    .unwrap();
    assert_eq!(
        stripe_config(&settings).checkout,
        CheckoutOptions {
            allow_promotion_codes: true,
            automatic_tax: Some(TaxBehavior::Inclusive),
            adaptive_pricing: AdaptivePricing::Off,
        }
    );
    // Automatic tax alone treats the price as exclusive of tax.
    let exclusive = load(&with(STRIPE, &[("STRIPE_AUTOMATIC_TAX", "true")])).unwrap();
    assert_eq!(
        stripe_config(&exclusive).checkout.automatic_tax,
        Some(TaxBehavior::Exclusive)
    );
}

#[test]
fn checkout_settings_are_honoured_by_the_demo_sandbox_too() {
    use lms_stripe_http::{AdaptivePricing, TaxBehavior};
    let settings = load(&[
        ("STRIPE_ALLOW_PROMOTION_CODES", "true"),
        ("STRIPE_AUTOMATIC_TAX", "true"),
        ("STRIPE_ADAPTIVE_PRICING", "auto"),
        ("SANDBOX_TAX_RATE_BPS", "2000"),
    ])
    .unwrap();
    let Mode::Demo(demo) = &settings.mode else {
        panic!("checkout settings are not production-like: still the demo");
    };
    assert_eq!(
        demo.checkout,
        CheckoutOptions {
            allow_promotion_codes: true,
            automatic_tax: Some(TaxBehavior::Exclusive),
            adaptive_pricing: AdaptivePricing::Auto,
        }
    );
    assert_eq!(demo.tax_rate_bps, 2000);
    assert_eq!(
        load(&[]).map(|s| match s.mode {
            Mode::Demo(demo) => demo.tax_rate_bps,
            Mode::Stripe(_) => u32::MAX,
        }),
        Ok(0)
    );
    // The sandbox's tax rate is the demo's own.
    let err = load(&with(STRIPE, &[("SANDBOX_TAX_RATE_BPS", "825")])).unwrap_err();
    assert_eq!(err.variable, "SANDBOX_TAX_RATE_BPS");
}

#[test]
fn a_bad_checkout_setting_is_one_line_naming_it() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("STRIPE_ALLOW_PROMOTION_CODES", "sometimes")],
            "STRIPE_ALLOW_PROMOTION_CODES: must be true or false, got \"sometimes\"",
        ),
        (
            &[("STRIPE_ALLOW_PROMOTION_CODES", " ")],
            "STRIPE_ALLOW_PROMOTION_CODES: is set but empty: unset it to use the default, or give a value",
        ),
        (
            &[("STRIPE_AUTOMATIC_TAX", "vat")],
            "STRIPE_AUTOMATIC_TAX: must be true or false, got \"vat\"",
        ),
        (
            &[("STRIPE_AUTOMATIC_TAX", "true"), ("STRIPE_TAX_BEHAVIOR", "included")],
            "STRIPE_TAX_BEHAVIOR: must be exclusive or inclusive, got \"included\"",
        ),
        (
            &[("STRIPE_TAX_BEHAVIOR", "inclusive")],
            "STRIPE_TAX_BEHAVIOR: only applies with automatic tax: set STRIPE_AUTOMATIC_TAX=true, or unset it",
        ),
        (
            &[("STRIPE_ADAPTIVE_PRICING", "on")],
            "STRIPE_ADAPTIVE_PRICING: must be auto (the Stripe account's setting decides) or off (always the price's currency), got \"on\"",
        ),
        (
            &[("SELF_REFUND_WINDOW_DAYS", "366")],
            "SELF_REFUND_WINDOW_DAYS: must be a whole number of days from 1 to 365, or 0 for no refunds requested by buyers, got \"366\"",
        ),
        (
            &[("SELF_REFUND_WINDOW_DAYS", "14d")],
            "SELF_REFUND_WINDOW_DAYS: must be a whole number of days from 1 to 365, or 0 for no refunds requested by buyers, got \"14d\"",
        ),
        (
            &[("SELF_REFUND_WINDOW_DAYS", "-1")],
            "SELF_REFUND_WINDOW_DAYS: must be a whole number of days from 1 to 365, or 0 for no refunds requested by buyers, got \"-1\"",
        ),
        (
            &[("SELF_REFUND_WINDOW_DAYS", " ")],
            "SELF_REFUND_WINDOW_DAYS: is set but empty: unset it to use the default, or give a value",
        ),
    ];
    for (overrides, line) in cases {
        let err = load(&with(STRIPE, overrides)).unwrap_err();
        assert_eq!(err.to_string(), *line, "{overrides:?}");
        // The same in the demo: these settings are not Stripe-only.
        let demo = load(overrides).unwrap_err();
        assert_eq!(demo.to_string(), *line, "demo: {overrides:?}");
    }
    let err = load(&[("SANDBOX_TAX_RATE_BPS", "10001")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "SANDBOX_TAX_RATE_BPS: must be a whole number from 0 to 10000, got \"10001\""
    );
}

#[test]
fn the_self_refund_window_is_off_unless_given_in_days() {
    assert_eq!(load(STRIPE).unwrap().use_cases.self_refund_window, None);
    for (raw, window) in [
        ("0", None),
        ("1", Some(time::Duration::days(1))),
        ("14", Some(time::Duration::days(14))),
        (" 365 ", Some(time::Duration::days(365))),
    ] {
        let settings = load(&with(STRIPE, &[("SELF_REFUND_WINDOW_DAYS", raw)])).unwrap();
        assert_eq!(settings.use_cases.self_refund_window, window, "{raw:?}");
    }
    // With the other use-case settings: none undoes another.
    let settings = load(&with(
        STRIPE,
        &[
            ("SELF_REFUND_WINDOW_DAYS", "30"),
            ("AUTO_REFUND_DOUBLE_PAYMENTS", "false"),
            ("GATEWAY_SYNC_MIN_INTERVAL", "2s"),
        ],
    ))
    .unwrap();
    assert_eq!(
        settings.use_cases.self_refund_window,
        Some(time::Duration::days(30))
    );
    assert!(!settings.use_cases.auto_refund_double_payments);
    // From the file's [operations] and [stripe] tables.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        "mode = \"demo\"\n[operations]\nself_refund_window_days = 7\n[stripe]\nallow_promotion_codes = true\n",
    )
    .unwrap();
    let from_file = Settings::resolve(Some(&path), lookup(&[]), true).unwrap();
    assert_eq!(
        from_file.use_cases.self_refund_window,
        Some(time::Duration::days(7))
    );
    let Mode::Demo(demo) = &from_file.mode else {
        panic!("the file says demo");
    };
    assert!(demo.checkout.allow_promotion_codes);
}

#[test]
fn group_commit_is_on_unless_off_or_a_number_of_lanes_on_postgresql() {
    for (raw, lanes) in [
        ("off", None),
        ("false", None),
        ("on", Some(GROUP_COMMIT_LANES)),
        ("TRUE", Some(GROUP_COMMIT_LANES)),
        ("1", Some(1)),
        ("4", Some(4)),
    ] {
        let settings = load(&with(STRIPE, &[("DATABASE_GROUP_COMMIT", raw)])).unwrap();
        assert_eq!(settings.database.group_commit, lanes, "{raw}");
    }
    let sqlite = ("DATABASE_URL", "sqlite:///tmp/lms.db");
    let off = load(&with(STRIPE, &[sqlite, ("DATABASE_GROUP_COMMIT", "off")])).unwrap();
    assert_eq!(off.database.group_commit, None);
    let unset = load(&with(STRIPE, &[sqlite])).unwrap();
    assert_eq!(unset.database.group_commit, None, "SQLite is never grouped");
}
