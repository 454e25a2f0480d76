// The Apollo client: every request goes to the Apexkit service with the session cookie
// (`credentials: "include"`); the page's origin must be in APEXKIT_TRUSTED_ORIGINS.
import { ApolloClient, CombinedGraphQLErrors, HttpLink, InMemoryCache } from "@apollo/client";

export const API_URL: string =
  (import.meta.env.VITE_APEXKIT_URL as string | undefined) ?? "http://127.0.0.1:4000";

export const client = new ApolloClient({
  link: new HttpLink({ uri: `${API_URL}/graphql`, credentials: "include" }),
  cache: new InMemoryCache(),
  defaultOptions: {
    query: { fetchPolicy: "no-cache" },
    mutate: { fetchPolicy: "no-cache" },
  },
});

/** The contract code of a failed operation (`extensions.code`), if it has one. */
export function errorCode(error: unknown): string | undefined {
  if (CombinedGraphQLErrors.is(error)) {
    const code = error.errors[0]?.extensions?.code;
    return typeof code === "string" ? code : undefined;
  }
  return undefined;
}

/** A message fit for the page: the service's message for GraphQL errors, else a generic one. */
export function errorMessage(error: unknown): string {
  if (CombinedGraphQLErrors.is(error)) {
    return error.errors.map((e) => e.message).join("; ");
  }
  if (error instanceof DOMException && error.name === "NotAllowedError") {
    return "The passkey prompt was cancelled or timed out.";
  }
  return error instanceof Error ? error.message : "Something went wrong";
}
