// The browser's half of a passkey ceremony. Apexkit sends the options as JSON (base64url for
// binary fields) and takes the credential back as JSON: PublicKeyCredential.parse*FromJSON and
// credential.toJSON() where the browser has them, the same conversion by hand elsewhere.

type Json = Record<string, unknown>;

function fromBase64url(value: string): ArrayBuffer {
  const base64 = value.replace(/-/g, "+").replace(/_/g, "/");
  const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
  const binary = atob(padded);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}

function toBase64url(buffer: ArrayBuffer | null): string | null {
  if (!buffer) return null;
  let binary = "";
  for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

type Descriptor = { id: string; type: string; transports?: string[] };

function descriptors(list: unknown): PublicKeyCredentialDescriptor[] | undefined {
  if (!Array.isArray(list)) return undefined;
  return (list as Descriptor[]).map((d) => ({
    type: "public-key",
    id: fromBase64url(d.id),
    transports: d.transports as AuthenticatorTransport[] | undefined,
  }));
}

type WithJson = typeof PublicKeyCredential & {
  parseCreationOptionsFromJSON?: (o: Json) => PublicKeyCredentialCreationOptions;
  parseRequestOptionsFromJSON?: (o: Json) => PublicKeyCredentialRequestOptions;
};

export function supported(): boolean {
  return typeof window.PublicKeyCredential === "function";
}

/** Why passkeys cannot work on this page's address, if they cannot: browsers refuse an IP
 * address as the relying party (`npm run dev` serves the app on http://127.0.0.1:5173). */
export function hostProblem(): string | null {
  const host = location.hostname;
  const isIp = /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.startsWith("[");
  return isIp
    ? `Passkeys need a domain name, and this page is on the IP address ${host}. ` +
        "Run the service with APEXKIT_BASE_URL=http://localhost:4000 and " +
        "APEXKIT_TRUSTED_ORIGINS=http://localhost:5173, and the app with " +
        "VITE_APEXKIT_URL=http://localhost:4000 npm run dev -- --host localhost, then open http://localhost:5173."
    : null;
}

function creationOptions(json: Json): PublicKeyCredentialCreationOptions {
  const native = PublicKeyCredential as WithJson;
  if (native.parseCreationOptionsFromJSON) return native.parseCreationOptionsFromJSON(json);
  const user = json.user as { id: string; name: string; displayName: string };
  return {
    ...(json as unknown as PublicKeyCredentialCreationOptions),
    challenge: fromBase64url(json.challenge as string),
    user: { ...user, id: fromBase64url(user.id) },
    excludeCredentials: descriptors(json.excludeCredentials),
  };
}

function requestOptions(json: Json): PublicKeyCredentialRequestOptions {
  const native = PublicKeyCredential as WithJson;
  if (native.parseRequestOptionsFromJSON) return native.parseRequestOptionsFromJSON(json);
  return {
    ...(json as unknown as PublicKeyCredentialRequestOptions),
    challenge: fromBase64url(json.challenge as string),
    allowCredentials: descriptors(json.allowCredentials),
  };
}

function credentialJson(credential: PublicKeyCredential): Json {
  const withJson = credential as PublicKeyCredential & { toJSON?: () => Json };
  if (typeof withJson.toJSON === "function") return withJson.toJSON();
  const response = credential.response;
  const out: Json = {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    clientExtensionResults: credential.getClientExtensionResults(),
    response: {
      clientDataJSON: toBase64url(response.clientDataJSON),
    },
  };
  const r = out.response as Json;
  if (response instanceof AuthenticatorAttestationResponse) {
    r.attestationObject = toBase64url(response.attestationObject);
    r.transports = response.getTransports?.() ?? [];
  } else {
    const assertion = response as AuthenticatorAssertionResponse;
    r.authenticatorData = toBase64url(assertion.authenticatorData);
    r.signature = toBase64url(assertion.signature);
    r.userHandle = toBase64url(assertion.userHandle);
  }
  return out;
}

/** navigator.credentials.create() with Apexkit's options; the credential as JSON. */
export async function createCredential(options: unknown): Promise<Json> {
  const credential = await navigator.credentials.create({
    publicKey: creationOptions(options as Json),
  });
  if (!credential) throw new Error("No passkey was created");
  return credentialJson(credential as PublicKeyCredential);
}

/** navigator.credentials.get() with Apexkit's options; the assertion as JSON. */
export async function getCredential(options: unknown): Promise<Json> {
  const credential = await navigator.credentials.get({
    publicKey: requestOptions(options as Json),
  });
  if (!credential) throw new Error("No passkey was chosen");
  return credentialJson(credential as PublicKeyCredential);
}
