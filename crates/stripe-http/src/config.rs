//! Configuration of the Stripe adapter. Secrets are wrapped so that `Debug` never shows them.

use lms_ports::{Clock, SystemClock};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// The API version every request pins with `Stripe-Version`, so a dashboard upgrade never
/// changes the shape of what this adapter reads.
pub const DEFAULT_API_VERSION: &str = "2025-06-30.basil";
/// Stripe's production API.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";
/// How old (or how far in the future) a webhook signature timestamp may be.
pub const DEFAULT_WEBHOOK_TOLERANCE: Duration = Duration::from_secs(300);
/// The placeholder Stripe replaces with the session id in the success URL.
pub const CHECKOUT_SESSION_ID_PLACEHOLDER: &str = "{CHECKOUT_SESSION_ID}";

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("the Stripe secret key must start with sk_test_, sk_live_, rk_test_ or rk_live_")]
    InvalidSecretKey,
    #[error("at least one non-empty webhook secret is required")]
    NoWebhookSecret,
    #[error("a webhook signing secret starts with whsec_ (copy it from the endpoint in the Stripe Dashboard, or from `stripe listen`)")]
    InvalidWebhookSecret,
    #[error("the success URL must contain the literal {{CHECKOUT_SESSION_ID}}")]
    SuccessUrlWithoutPlaceholder,
    #[error("invalid URL for {field}: {reason}")]
    InvalidUrl { field: &'static str, reason: String },
    #[error("missing setting {0}")]
    Missing(&'static str),
    #[error("invalid retry policy: {0}")]
    InvalidRetryPolicy(&'static str),
}

/// Whether a key acts on test data or live data; webhook events must agree with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    Test,
    Live,
}

impl KeyMode {
    /// The `livemode` value events sent for this mode carry.
    pub const fn is_live(self) -> bool {
        matches!(self, KeyMode::Live)
    }
}

/// A Stripe secret (`sk_...`) or restricted (`rk_...`) API key. `Debug` shows only the mode.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey {
    key: String,
    mode: KeyMode,
}

impl SecretKey {
    /// # Errors
    /// [`ConfigError::InvalidSecretKey`] unless the key has a known prefix and a body.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let key = raw.trim();
        let mode = [
            ("sk_test_", KeyMode::Test),
            ("rk_test_", KeyMode::Test),
            ("sk_live_", KeyMode::Live),
            ("rk_live_", KeyMode::Live),
        ]
        .into_iter()
        .find_map(|(prefix, mode)| {
            key.strip_prefix(prefix)
                .filter(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_graphic()))
                .map(|_| mode)
        })
        .ok_or(ConfigError::InvalidSecretKey)?;
        Ok(Self {
            key: key.to_owned(),
            mode,
        })
    }

    pub const fn mode(&self) -> KeyMode {
        self.mode
    }

    /// The key itself, for the `Authorization` header only.
    pub(crate) fn expose(&self) -> &str {
        &self.key
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({:?}, [redacted])", self.mode)
    }
}

/// One webhook signing secret (`whsec_...`), used as raw UTF-8 bytes. `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// # Errors
    /// [`ConfigError::NoWebhookSecret`] for an empty secret,
    /// [`ConfigError::InvalidWebhookSecret`] for one that is not `whsec_` and a body (a key or
    /// an id pasted by mistake would otherwise reject every webhook at run time).
    pub fn new(raw: &str) -> Result<Self, ConfigError> {
        let secret = raw.trim();
        if secret.is_empty() {
            return Err(ConfigError::NoWebhookSecret);
        }
        match secret.strip_prefix("whsec_") {
            Some(body) if !body.is_empty() && body.bytes().all(|b| b.is_ascii_graphic()) => {
                Ok(Self(secret.to_owned()))
            }
            _ => Err(ConfigError::InvalidWebhookSecret),
        }
    }

    /// Parses a comma-separated list (`STRIPE_WEBHOOK_SECRET=whsec_old,whsec_new`), ignoring
    /// empty items.
    ///
    /// # Errors
    /// [`ConfigError::NoWebhookSecret`] when the list holds no secret,
    /// [`ConfigError::InvalidWebhookSecret`] when any item is not a signing secret.
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, ConfigError> {
        let secrets: Vec<Self> = raw
            .split(',')
            .filter(|item| !item.trim().is_empty())
            .map(Self::new)
            .collect::<Result<_, _>>()?;
        if secrets.is_empty() {
            return Err(ConfigError::NoWebhookSecret);
        }
        Ok(secrets)
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

/// Bounded retries with exponential backoff and jitter.
///
/// Attempt `n` (counting retries from 1) waits a random duration between half and all of
/// `min(base * 2^(n-1), cap)`. At most `max_attempts` requests are sent (the first included),
/// and no retry starts once `total_budget` would be exceeded by its wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    pub total_budget: Duration,
}

impl Default for RetryPolicy {
    /// The official SDKs' behaviour: two retries, `min(0.5 s * 2^(n-1), 5 s)`.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(5),
            total_budget: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub const fn none() -> Self {
        Self {
            max_attempts: 1,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            total_budget: Duration::from_secs(3600),
        }
    }

    /// The ceiling of the wait before retry number `retry` (1-based), before jitter.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(31);
        let factor = 1_u32 << exponent;
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// The wait before retry number `retry`, with jitter drawn from `random`: between half the
    /// ceiling and the ceiling.
    pub fn backoff(&self, retry: u32, random: u64) -> Duration {
        let ceiling = self.backoff_ceiling(retry).as_nanos();
        let half = ceiling / 2;
        let spread = ceiling - half;
        let jitter = if spread == 0 {
            0
        } else {
            u128::from(random) % (spread + 1)
        };
        let nanos = half + jitter;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::InvalidRetryPolicy(
                "max_attempts must be at least 1",
            ));
        }
        if self.base_delay > self.max_delay {
            return Err(ConfigError::InvalidRetryPolicy(
                "base_delay must not exceed max_delay",
            ));
        }
        Ok(())
    }
}

/// How Stripe Tax treats the price sent with a checkout
/// (`line_items[0][price_data][tax_behavior]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaxBehavior {
    /// Tax is added on top of the price.
    Exclusive,
    /// The price includes its tax.
    Inclusive,
}

impl TaxBehavior {
    /// Stripe's name for it.
    pub const fn as_str(self) -> &'static str {
        match self {
            TaxBehavior::Exclusive => "exclusive",
            TaxBehavior::Inclusive => "inclusive",
        }
    }
}

/// Whether Adaptive Pricing may present a checkout in the customer's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdaptivePricing {
    /// The Stripe account's setting decides (nothing is sent); a converted checkout is judged
    /// in the price's currency through its `currency_conversion`.
    #[default]
    Auto,
    /// Every checkout is in the price's currency (`adaptive_pricing[enabled]=false`).
    Off,
}

/// What every checkout session is created with, beyond the purchase itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CheckoutOptions {
    /// The payment page offers a promotion code field (`allow_promotion_codes=true`).
    pub allow_promotion_codes: bool,
    /// Stripe Tax computes tax from the customer's address (`automatic_tax[enabled]=true`),
    /// treating the price as this says; `None`: no automatic tax.
    pub automatic_tax: Option<TaxBehavior>,
    pub adaptive_pricing: AdaptivePricing,
}

/// A checkout setting refused, named by its variable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{variable}: {problem}")]
pub struct CheckoutSettingError {
    /// The environment variable that carries the bad value.
    pub variable: &'static str,
    /// What is wrong and how to fix it.
    pub problem: String,
}

impl CheckoutOptions {
    /// Reads `STRIPE_ALLOW_PROMOTION_CODES` (`true|false`, default false),
    /// `STRIPE_AUTOMATIC_TAX` (`true|false`, default false), `STRIPE_TAX_BEHAVIOR`
    /// (`exclusive|inclusive`, default exclusive; only with automatic tax) and
    /// `STRIPE_ADAPTIVE_PRICING` (`auto|off`, default auto) through `lookup` (e.g.
    /// `|name| std::env::var(name).ok()`); an absent variable takes its default. Flags also
    /// read `1|0`, `yes|no` and `on|off`; values are case-insensitive and trimmed.
    ///
    /// # Errors
    /// A [`CheckoutSettingError`] naming the first variable that is set but empty, holds an
    /// unknown value, or (`STRIPE_TAX_BEHAVIOR`) is set without automatic tax.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, CheckoutSettingError> {
        let read = |variable: &'static str| -> Result<Option<String>, CheckoutSettingError> {
            match lookup(variable) {
                None => Ok(None),
                Some(value) if value.trim().is_empty() => Err(CheckoutSettingError {
                    variable,
                    problem: "is set but empty: unset it to use the default, or give a value"
                        .to_owned(),
                }),
                Some(value) => Ok(Some(value.trim().to_ascii_lowercase())),
            }
        };
        let flag = |variable: &'static str| -> Result<bool, CheckoutSettingError> {
            match read(variable)?.as_deref() {
                None | Some("false" | "0" | "no" | "off") => Ok(false),
                Some("true" | "1" | "yes" | "on") => Ok(true),
                Some(other) => Err(CheckoutSettingError {
                    variable,
                    problem: format!("must be true or false, got {other:?}"),
                }),
            }
        };
        let allow_promotion_codes = flag("STRIPE_ALLOW_PROMOTION_CODES")?;
        let automatic_tax = flag("STRIPE_AUTOMATIC_TAX")?;
        let tax_behavior = match read("STRIPE_TAX_BEHAVIOR")?.as_deref() {
            None => None,
            Some("exclusive") => Some(TaxBehavior::Exclusive),
            Some("inclusive") => Some(TaxBehavior::Inclusive),
            Some(other) => {
                return Err(CheckoutSettingError {
                    variable: "STRIPE_TAX_BEHAVIOR",
                    problem: format!("must be exclusive or inclusive, got {other:?}"),
                })
            }
        };
        if tax_behavior.is_some() && !automatic_tax {
            return Err(CheckoutSettingError {
                variable: "STRIPE_TAX_BEHAVIOR",
                problem:
                    "only applies with automatic tax: set STRIPE_AUTOMATIC_TAX=true, or unset it"
                        .to_owned(),
            });
        }
        let adaptive_pricing = match read("STRIPE_ADAPTIVE_PRICING")?.as_deref() {
            None | Some("auto") => AdaptivePricing::Auto,
            Some("off") => AdaptivePricing::Off,
            Some(other) => {
                return Err(CheckoutSettingError {
                    variable: "STRIPE_ADAPTIVE_PRICING",
                    problem: format!(
                        "must be auto (the Stripe account's setting decides) or off (always the price's currency), got {other:?}"
                    ),
                })
            }
        };
        Ok(Self {
            allow_promotion_codes,
            automatic_tax: automatic_tax.then(|| tax_behavior.unwrap_or(TaxBehavior::Exclusive)),
            adaptive_pricing,
        })
    }
}

/// Everything the Stripe adapter needs. Build with [`StripeConfig::new`] (or
/// [`StripeConfig::from_lookup`] for environment variables), then adjust the public fields.
#[derive(Clone)]
pub struct StripeConfig {
    /// `https://api.stripe.com`, or a stand-in (tests, a local emulator). No trailing path.
    pub api_base: reqwest::Url,
    pub secret_key: SecretKey,
    /// Pinned `Stripe-Version`.
    pub api_version: String,
    pub connect_timeout: Duration,
    /// Whole-request timeout of one attempt.
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    /// Where Stripe sends the customer after paying; contains `{CHECKOUT_SESSION_ID}`.
    pub success_url: String,
    pub cancel_url: String,
    /// Any of these may have signed a webhook (rotation: old and new for up to 24 h).
    pub webhook_secrets: Vec<WebhookSecret>,
    pub webhook_tolerance: Duration,
    pub clock: Arc<dyn Clock>,
    /// Promotion codes, automatic tax and Adaptive Pricing of every checkout (all off by
    /// default: the price is charged as it is).
    pub checkout: CheckoutOptions,
}

impl StripeConfig {
    /// A configuration with the defaults: Stripe's API base, pinned version, 5 s connect and
    /// 30 s request timeouts, SDK-like retries, 300 s webhook tolerance, the system clock.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the invalid setting.
    pub fn new(
        secret_key: &str,
        webhook_secrets: &str,
        success_url: &str,
        cancel_url: &str,
    ) -> Result<Self, ConfigError> {
        let config = Self {
            api_base: parse_url("STRIPE_API_BASE", DEFAULT_API_BASE)?,
            secret_key: SecretKey::parse(secret_key)?,
            api_version: DEFAULT_API_VERSION.to_owned(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            success_url: success_url.trim().to_owned(),
            cancel_url: cancel_url.trim().to_owned(),
            webhook_secrets: WebhookSecret::parse_list(webhook_secrets)?,
            webhook_tolerance: DEFAULT_WEBHOOK_TOLERANCE,
            clock: Arc::new(SystemClock),
            checkout: CheckoutOptions::default(),
        };
        config.validate()?;
        Ok(config)
    }

    /// Reads `STRIPE_SECRET_KEY`, `STRIPE_WEBHOOK_SECRET` (comma-separated), `STRIPE_SUCCESS_URL`,
    /// `STRIPE_CANCEL_URL` and optionally `STRIPE_API_BASE` through `lookup`
    /// (e.g. `|name| std::env::var(name).ok()`). The URLs default to the local frontend.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the missing or invalid setting.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let secret_key =
            lookup("STRIPE_SECRET_KEY").ok_or(ConfigError::Missing("STRIPE_SECRET_KEY"))?;
        let webhook =
            lookup("STRIPE_WEBHOOK_SECRET").ok_or(ConfigError::Missing("STRIPE_WEBHOOK_SECRET"))?;
        let success = lookup("STRIPE_SUCCESS_URL").unwrap_or_else(|| {
            "http://localhost:5173/payment/success?session_id={CHECKOUT_SESSION_ID}".to_owned()
        });
        let cancel = lookup("STRIPE_CANCEL_URL")
            .unwrap_or_else(|| "http://localhost:5173/payment/cancel".to_owned());
        let mut config = Self::new(&secret_key, &webhook, &success, &cancel)?;
        if let Some(base) = lookup("STRIPE_API_BASE") {
            config.api_base = parse_url("STRIPE_API_BASE", &base)?;
        }
        Ok(config)
    }

    /// Replaces the API base (tests, local emulators).
    ///
    /// # Errors
    /// [`ConfigError::InvalidUrl`].
    pub fn with_api_base(mut self, base: &str) -> Result<Self, ConfigError> {
        self.api_base = parse_url("STRIPE_API_BASE", base)?;
        Ok(self)
    }

    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    #[must_use]
    pub fn with_checkout(mut self, checkout: CheckoutOptions) -> Self {
        self.checkout = checkout;
        self
    }

    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    #[must_use]
    pub fn with_timeouts(mut self, connect: Duration, request: Duration) -> Self {
        self.connect_timeout = connect;
        self.request_timeout = request;
        self
    }

    /// Checks the invariants the public fields must keep.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the invalid setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.success_url.contains(CHECKOUT_SESSION_ID_PLACEHOLDER) {
            return Err(ConfigError::SuccessUrlWithoutPlaceholder);
        }
        check_absolute_url("STRIPE_SUCCESS_URL", &self.success_url)?;
        check_absolute_url("STRIPE_CANCEL_URL", &self.cancel_url)?;
        if self.webhook_secrets.is_empty() {
            return Err(ConfigError::NoWebhookSecret);
        }
        self.retry.validate()
    }
}

impl fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeConfig")
            .field("api_base", &self.api_base.as_str())
            .field("secret_key", &self.secret_key)
            .field("api_version", &self.api_version)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("success_url", &self.success_url)
            .field("cancel_url", &self.cancel_url)
            .field("webhook_secrets", &self.webhook_secrets)
            .field("webhook_tolerance", &self.webhook_tolerance)
            .field("checkout", &self.checkout)
            .finish_non_exhaustive()
    }
}

fn parse_url(field: &'static str, raw: &str) -> Result<reqwest::Url, ConfigError> {
    let url = reqwest::Url::parse(raw.trim()).map_err(|error| ConfigError::InvalidUrl {
        field,
        reason: error.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(ConfigError::InvalidUrl {
            field,
            reason: "not an http(s) base URL".to_owned(),
        });
    }
    Ok(url)
}

/// Checks a success or cancel URL the way [`StripeConfig::new`] does, for callers that hold
/// one before the rest of the configuration exists.
///
/// # Errors
/// [`ConfigError::InvalidUrl`] naming `field`.
pub fn check_return_url(field: &'static str, raw: &str) -> Result<(), ConfigError> {
    check_absolute_url(field, raw)
}

fn check_absolute_url(field: &'static str, raw: &str) -> Result<(), ConfigError> {
    // The placeholder's braces are not valid URL characters for every parser; check the rest.
    let candidate = raw.replace(CHECKOUT_SESSION_ID_PLACEHOLDER, "x");
    parse_url(field, &candidate).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUCCESS: &str = "https://app.example/ok?session_id={CHECKOUT_SESSION_ID}";
    const CANCEL: &str = "https://app.example/cancel";

    #[test]
    fn key_prefixes_decide_the_mode() {
        assert_eq!(
            SecretKey::parse("sk_test_abc").unwrap().mode(),
            KeyMode::Test
        );
        assert_eq!(
            SecretKey::parse("rk_test_abc").unwrap().mode(),
            KeyMode::Test
        );
        assert_eq!(
            SecretKey::parse("sk_live_abc").unwrap().mode(),
            KeyMode::Live
        );
        assert_eq!(
            SecretKey::parse(" rk_live_abc ").unwrap().mode(),
            KeyMode::Live
        );
        for bad in [
            "",
            "sk_test_",
            "pk_test_abc",
            "whsec_abc",
            "sk_abc",
            "sk_test_a b",
        ] {
            assert_eq!(
                SecretKey::parse(bad),
                Err(ConfigError::InvalidSecretKey),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let config = StripeConfig::new(
            "sk_test_SUPERSECRET123",
            "whsec_AAA, whsec_BBB",
            SUCCESS,
            CANCEL,
        )
        .unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("SUPERSECRET123"), "{debug}");
        assert!(
            !debug.contains("whsec_AAA") && !debug.contains("whsec_BBB"),
            "{debug}"
        );
        assert!(debug.contains("redacted"));
        assert_eq!(config.webhook_secrets.len(), 2);
    }

    #[test]
    fn webhook_secret_list_is_comma_separated() {
        let secrets = WebhookSecret::parse_list("whsec_a,, whsec_b ,").unwrap();
        for pasted_by_mistake in ["sk_test_abc", "whsec_", "whsec_a,we_123", "secret"] {
            assert_eq!(
                WebhookSecret::parse_list(pasted_by_mistake).unwrap_err(),
                ConfigError::InvalidWebhookSecret,
                "{pasted_by_mistake}"
            );
        }
        assert_eq!(secrets.len(), 2);
        assert_eq!(secrets[1].as_bytes(), b"whsec_b");
        assert_eq!(
            WebhookSecret::parse_list(" , "),
            Err(ConfigError::NoWebhookSecret)
        );
    }

    #[test]
    fn success_url_needs_the_placeholder() {
        assert_eq!(
            StripeConfig::new("sk_test_x", "whsec_x", "https://app.example/ok", CANCEL)
                .unwrap_err(),
            ConfigError::SuccessUrlWithoutPlaceholder
        );
        assert!(matches!(
            StripeConfig::new("sk_test_x", "whsec_x", SUCCESS, "not a url").unwrap_err(),
            ConfigError::InvalidUrl { .. }
        ));
    }

    #[test]
    fn from_lookup_reads_the_documented_variables() {
        let lookup = |name: &str| match name {
            "STRIPE_SECRET_KEY" => Some("sk_live_k".to_owned()),
            "STRIPE_WEBHOOK_SECRET" => Some("whsec_1,whsec_2".to_owned()),
            "STRIPE_API_BASE" => Some("http://127.0.0.1:12111".to_owned()),
            _ => None,
        };
        let config = StripeConfig::from_lookup(lookup).unwrap();
        assert_eq!(config.secret_key.mode(), KeyMode::Live);
        assert_eq!(config.webhook_secrets.len(), 2);
        assert_eq!(config.api_base.as_str(), "http://127.0.0.1:12111/");
        assert!(config.success_url.contains(CHECKOUT_SESSION_ID_PLACEHOLDER));
        assert_eq!(
            StripeConfig::from_lookup(|_| None).unwrap_err(),
            ConfigError::Missing("STRIPE_SECRET_KEY")
        );
    }

    fn checkout_options(pairs: &[(&str, &str)]) -> Result<CheckoutOptions, CheckoutSettingError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        CheckoutOptions::from_lookup(|name| {
            pairs
                .iter()
                .find(|(variable, _)| variable == name)
                .map(|(_, value)| value.clone())
        })
    }

    #[test]
    fn checkout_options_default_to_charging_the_price_as_it_is() {
        assert_eq!(
            checkout_options(&[]),
            Ok(CheckoutOptions {
                allow_promotion_codes: false,
                automatic_tax: None,
                adaptive_pricing: AdaptivePricing::Auto,
            })
        );
        assert_eq!(
            checkout_options(&[]),
            Ok(CheckoutOptions::default()),
            "the default is what no variable means"
        );
    }

    #[test]
    fn checkout_options_read_their_variables() {
        assert_eq!(
            checkout_options(&[
                ("STRIPE_ALLOW_PROMOTION_CODES", "true"),
                ("STRIPE_AUTOMATIC_TAX", " TRUE "),
                ("STRIPE_TAX_BEHAVIOR", "Inclusive"),
                ("STRIPE_ADAPTIVE_PRICING", "off"),
            ]),
            Ok(CheckoutOptions {
                allow_promotion_codes: true,
                automatic_tax: Some(TaxBehavior::Inclusive),
                adaptive_pricing: AdaptivePricing::Off,
            })
        );
        assert_eq!(
            checkout_options(&[("STRIPE_AUTOMATIC_TAX", "1")])
                .unwrap()
                .automatic_tax,
            Some(TaxBehavior::Exclusive),
            "automatic tax treats the price as exclusive unless told"
        );
        assert_eq!(
            checkout_options(&[
                ("STRIPE_ALLOW_PROMOTION_CODES", "false"),
                ("STRIPE_AUTOMATIC_TAX", "no"),
                ("STRIPE_ADAPTIVE_PRICING", "auto"),
            ]),
            Ok(CheckoutOptions::default())
        );
    }

    #[test]
    fn a_bad_checkout_setting_names_its_variable() {
        let refused = |pairs: &[(&str, &str)]| checkout_options(pairs).unwrap_err();
        for (pairs, variable, problem) in [
            (
                &[("STRIPE_ALLOW_PROMOTION_CODES", "maybe")][..],
                "STRIPE_ALLOW_PROMOTION_CODES",
                "must be true or false",
            ),
            (
                &[("STRIPE_AUTOMATIC_TAX", " ")][..],
                "STRIPE_AUTOMATIC_TAX",
                "is set but empty",
            ),
            (
                &[
                    ("STRIPE_AUTOMATIC_TAX", "true"),
                    ("STRIPE_TAX_BEHAVIOR", "both"),
                ][..],
                "STRIPE_TAX_BEHAVIOR",
                "must be exclusive or inclusive",
            ),
            (
                &[("STRIPE_TAX_BEHAVIOR", "inclusive")][..],
                "STRIPE_TAX_BEHAVIOR",
                "only applies with automatic tax",
            ),
            (
                &[
                    ("STRIPE_AUTOMATIC_TAX", "false"),
                    ("STRIPE_TAX_BEHAVIOR", "exclusive"),
                ][..],
                "STRIPE_TAX_BEHAVIOR",
                "only applies with automatic tax",
            ),
            (
                &[("STRIPE_ADAPTIVE_PRICING", "on")][..],
                "STRIPE_ADAPTIVE_PRICING",
                "must be auto",
            ),
        ] {
            let error = refused(pairs);
            assert_eq!(error.variable, variable, "{pairs:?}");
            assert!(error.problem.starts_with(problem), "{pairs:?}: {error}");
            assert!(error.to_string().starts_with(&format!("{variable}: ")));
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(700),
            total_budget: Duration::from_secs(10),
        };
        assert_eq!(policy.backoff_ceiling(1), Duration::from_millis(100));
        assert_eq!(policy.backoff_ceiling(2), Duration::from_millis(200));
        assert_eq!(policy.backoff_ceiling(3), Duration::from_millis(400));
        assert_eq!(policy.backoff_ceiling(4), Duration::from_millis(700));
        assert_eq!(policy.backoff_ceiling(u32::MAX), Duration::from_millis(700));
        for random in [0, 1, 12345, u64::MAX] {
            for retry in 1..6 {
                let wait = policy.backoff(retry, random);
                let ceiling = policy.backoff_ceiling(retry);
                assert!(
                    wait >= ceiling / 2 && wait <= ceiling,
                    "{retry} {random} {wait:?}"
                );
            }
        }
        assert_eq!(policy.backoff(1, 0), Duration::from_millis(50));
    }
}
