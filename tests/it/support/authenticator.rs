//! A software WebAuthn authenticator with the browser's part folded in, built from the WebAuthn
//! Level 3 spec: ES256 (P-256) keys, attestation `none`, and `PublicKeyCredential` JSON as
//! `toJSON()` gives it. Each instance holds one discoverable credential; tests set its
//! signature counter, flags and origin to play honest, cloned or phishing clients.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_cbor_2::Value as Cbor;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const BS: u8 = 0x10;
const AT: u8 = 0x40;

pub struct SoftAuthenticator {
    key: SigningKey,
    pub credential_id: Vec<u8>,
    /// The user handle the credential was created for (returned by assertions).
    pub user_handle: Option<Vec<u8>>,
    /// The signature counter the next operation reports (then incremented unless `fixed`).
    pub counter: u32,
    /// Report the same counter every time (0: as synced passkeys do).
    pub fixed_counter: bool,
    /// The origin the "browser" writes into `clientDataJSON`.
    pub origin: String,
    /// The user verified (biometrics, PIN).
    pub user_verified: bool,
    /// A synced passkey: backup eligible and backed up.
    pub synced: bool,
    /// The make and model it reports in its attested credential data (zeros: it does not say).
    pub aaguid: [u8; 16],
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .expect("base64url")
}

fn random<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("rng");
    buf
}

impl SoftAuthenticator {
    pub fn new(origin: &str) -> Self {
        let key = loop {
            if let Ok(key) = SigningKey::from_slice(&random::<32>()) {
                break key;
            }
        };
        Self {
            key,
            credential_id: random::<16>().to_vec(),
            user_handle: None,
            counter: 0,
            fixed_counter: false,
            origin: origin.to_owned(),
            user_verified: true,
            synced: false,
            aaguid: [0; 16],
        }
    }

    /// A synced passkey: counter always 0, backup eligible and backed up.
    pub fn synced(origin: &str) -> Self {
        Self {
            fixed_counter: true,
            synced: true,
            ..Self::new(origin)
        }
    }

    fn client_data(&self, kind: &str, options: &Value) -> Vec<u8> {
        let challenge = options["challenge"].as_str().expect("options.challenge");
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": false,
        }))
        .expect("json")
    }

    fn auth_data(&mut self, rp_id: &str, attested: Option<Vec<u8>>) -> Vec<u8> {
        let mut flags = UP;
        if self.user_verified {
            flags |= UV;
        }
        if self.synced {
            flags |= BE | BS;
        }
        if attested.is_some() {
            flags |= AT;
        }
        let mut data = Sha256::digest(rp_id.as_bytes()).to_vec();
        data.push(flags);
        data.extend_from_slice(&self.counter.to_be_bytes());
        if !self.fixed_counter {
            self.counter += 1;
        }
        if let Some(credential) = attested {
            data.extend_from_slice(&self.aaguid);
            data.extend_from_slice(&(self.credential_id.len() as u16).to_be_bytes());
            data.extend_from_slice(&self.credential_id);
            data.extend_from_slice(&credential);
        }
        data
    }

    /// The credential public key as a COSE_Key (EC2, P-256, ES256).
    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.verifying_key().to_encoded_point(false);
        let mut map = BTreeMap::new();
        map.insert(Cbor::Integer(1), Cbor::Integer(2)); // kty: EC2
        map.insert(Cbor::Integer(3), Cbor::Integer(-7)); // alg: ES256
        map.insert(Cbor::Integer(-1), Cbor::Integer(1)); // crv: P-256
        map.insert(
            Cbor::Integer(-2),
            Cbor::Bytes(point.x().expect("x").to_vec()),
        );
        map.insert(
            Cbor::Integer(-3),
            Cbor::Bytes(point.y().expect("y").to_vec()),
        );
        serde_cbor_2::to_vec(&Cbor::Map(map)).expect("cbor")
    }

    /// `navigator.credentials.create({ publicKey: options })`, answered as `toJSON()` would.
    pub fn create(&mut self, options: &Value) -> Value {
        let rp_id = options["rp"]["id"].as_str().expect("options.rp.id");
        self.user_handle = Some(unb64(
            options["user"]["id"].as_str().expect("options.user.id"),
        ));
        let client_data = self.client_data("webauthn.create", options);
        let auth_data = self.auth_data(rp_id, Some(self.cose_key()));
        let mut attestation = BTreeMap::new();
        attestation.insert(Cbor::Text("fmt".into()), Cbor::Text("none".into()));
        attestation.insert(Cbor::Text("attStmt".into()), Cbor::Map(BTreeMap::new()));
        attestation.insert(Cbor::Text("authData".into()), Cbor::Bytes(auth_data));
        let attestation = serde_cbor_2::to_vec(&Cbor::Map(attestation)).expect("cbor");
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "attestationObject": b64(&attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        })
    }

    /// `navigator.credentials.get({ publicKey: options })`, answered as `toJSON()` would.
    pub fn get(&mut self, options: &Value) -> Value {
        let rp_id = options["rpId"].as_str().expect("options.rpId");
        let client_data = self.client_data("webauthn.get", options);
        let auth_data = self.auth_data(rp_id, None);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let signature: Signature = self.key.sign(&signed);
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "authenticatorData": b64(&auth_data),
                "signature": b64(signature.to_der().as_bytes()),
                "userHandle": self.user_handle.as_deref().map(b64),
            },
            "clientExtensionResults": {},
        })
    }
}
