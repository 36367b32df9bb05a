//! Signing and verifying bearer JWTs with pinned algorithms.

use std::time::Duration;

use anyhow::Context;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use super::{Actor, ActorKind, RUNTIME_ROLE_CLAIM, Role, validate_tenant};
use crate::cache::Bounded;
use crate::config::{Config, JwtAlgorithm};

/// The claims Runflow reads.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub tenant: String,
    pub role: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Runtime tokens only: `staging` or `production`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// Verifies tokens, and signs them when it holds a signing key (HS256).
pub struct TokenService {
    algorithm: Algorithm,
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    validation: Validation,
    issuer: Option<String>,
    audience: Option<String>,
    /// Tokens verified before, with the caller they name (see [`TokenService::verify`]).
    verified: Bounded<String, Actor>,
}

/// How many verified tokens are remembered.
const VERIFIED_TOKENS: usize = 4096;
/// Longer tokens are verified every time and never remembered (bounds the cache's bytes).
const MAX_CACHED_TOKEN_BYTES: usize = 2048;

impl TokenService {
    /// Builds the service from configuration. `hs256_secret` is the configured or generated
    /// secret (used only with HS256).
    pub fn from_config(config: &Config, hs256_secret: Option<&str>) -> anyhow::Result<Self> {
        let (algorithm, decoding, encoding) = match config.jwt_algorithm {
            JwtAlgorithm::Hs256 => {
                let secret = hs256_secret.context("RUNFLOW_JWT_SECRET is required for HS256")?;
                (
                    Algorithm::HS256,
                    DecodingKey::from_secret(secret.as_bytes()),
                    Some(EncodingKey::from_secret(secret.as_bytes())),
                )
            }
            algorithm @ (JwtAlgorithm::Rs256 | JwtAlgorithm::Es256) => {
                let path = config
                    .jwt_public_key_file
                    .as_ref()
                    .context("RUNFLOW_JWT_PUBLIC_KEY_FILE is required for RS256/ES256")?;
                let pem = std::fs::read(path)
                    .with_context(|| format!("RUNFLOW_JWT_PUBLIC_KEY_FILE: cannot read {}", path.display()))?;
                if algorithm == JwtAlgorithm::Rs256 {
                    let key = DecodingKey::from_rsa_pem(&pem)
                        .context("RUNFLOW_JWT_PUBLIC_KEY_FILE is not an RSA public key in PEM")?;
                    (Algorithm::RS256, key, None)
                } else {
                    let key = DecodingKey::from_ec_pem(&pem)
                        .context("RUNFLOW_JWT_PUBLIC_KEY_FILE is not an EC public key in PEM")?;
                    (Algorithm::ES256, key, None)
                }
            }
        };
        let mut validation = Validation::new(algorithm);
        // Only the configured algorithm is accepted (no `alg` confusion).
        validation.algorithms = vec![algorithm];
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = 30;
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &config.jwt_issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        if let Some(audience) = &config.jwt_audience {
            validation.set_audience(&[audience]);
            required.push("aud");
        } else {
            validation.validate_aud = false;
        }
        validation.set_required_spec_claims(&required);
        Ok(TokenService {
            algorithm,
            decoding,
            encoding,
            validation,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            verified: Bounded::new(VERIFIED_TOKENS),
        })
    }

    /// Verifies a token; the error is a reason safe to show to the caller.
    ///
    /// A token that verified before is remembered (the keys never change while the process
    /// runs, so its signature and claims stay valid) until it expires: a hit checks only the
    /// expiry, with the same leeway as a full verification. Refused tokens are not remembered.
    pub fn verify(&self, token: &str) -> Result<Actor, String> {
        let cacheable = token.len() <= MAX_CACHED_TOKEN_BYTES;
        if cacheable && let Some(actor) = self.verified.get(token) {
            if actor.expires_at().saturating_add(self.validation.leeway) >= jsonwebtoken::get_current_timestamp() {
                return Ok(actor);
            }
            self.verified.remove(token);
        }
        let actor = self.verify_uncached(token)?;
        if cacheable {
            self.verified.put(token.to_string(), actor.clone());
        }
        Ok(actor)
    }

    fn verify_uncached(&self, token: &str) -> Result<Actor, String> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation).map_err(|error| {
            use jsonwebtoken::errors::ErrorKind;
            match error.kind() {
                ErrorKind::ExpiredSignature => "the token has expired".to_string(),
                ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_string(),
                ErrorKind::InvalidAlgorithm => "the token's algorithm is not accepted".to_string(),
                ErrorKind::InvalidSignature => "the token's signature is invalid".to_string(),
                ErrorKind::InvalidIssuer => "the token's issuer is not accepted".to_string(),
                ErrorKind::InvalidAudience => "the token's audience is not accepted".to_string(),
                ErrorKind::MissingRequiredClaim(claim) => {
                    format!("the token has no `{claim}` claim")
                }
                _ => "the token is malformed or has invalid claims".to_string(),
            }
        })?;
        let claims = data.claims;
        validate_tenant(&claims.tenant)?;
        let role: Option<Role> = if claims.role == RUNTIME_ROLE_CLAIM {
            None
        } else {
            Some(claims.role.parse()?)
        };
        if claims.sub.is_empty() {
            return Err("the token's `sub` is empty".into());
        }
        let kind = match (role, claims.environment.as_deref()) {
            (Some(role), _) => ActorKind::Person(role),
            (None, Some(name)) => ActorKind::Runtime(
                entity::Environment::parse(name)
                    .ok_or_else(|| format!("the token's environment {name:?} is not staging or production"))?,
            ),
            (None, None) => return Err("a runtime token needs an `environment` claim".into()),
        };
        Ok(Actor::new(claims.sub, claims.tenant, kind, claims.exp))
    }

    /// Signs a token for `tenant` naming a caller of `kind`, valid for `ttl`.
    pub fn mint(&self, subject: &str, tenant: &str, kind: ActorKind, ttl: Duration) -> anyhow::Result<String> {
        validate_tenant(tenant).map_err(anyhow::Error::msg)?;
        let encoding = self
            .encoding
            .as_ref()
            .context("tokens can be minted only with HS256; mint RS256/ES256 tokens with your identity provider")?;
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: subject.to_string(),
            tenant: tenant.to_string(),
            role: kind.role_claim().to_string(),
            exp: now + ttl.as_secs(),
            nbf: Some(now.saturating_sub(1)),
            iat: Some(now),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            environment: kind.environment().map(|e| e.as_str().to_string()),
        };
        Ok(encode(&Header::new(self.algorithm), &claims, encoding)?)
    }
}
