// Every GraphQL operation the example uses. `npm run codegen` reads this file and writes the
// typed documents into src/gql/ from ../../schema.graphql (committed, so builds work offline).
import { graphql } from "./gql";

export const UserFields = graphql(`
  fragment UserFields on User {
    id
    name
    email
    emailVerified
  }
`);

export const Me = graphql(`
  query Me {
    me {
      ...UserFields
    }
  }
`);

export const SocialProviders = graphql(`
  query SocialProviders {
    socialProviders {
      id
      name
    }
  }
`);

export const SignUp = graphql(`
  mutation SignUp($input: SignUpEmailInput!) {
    signUpEmail(input: $input) {
      user {
        ...UserFields
      }
      session {
        id
      }
    }
  }
`);

export const SignIn = graphql(`
  mutation SignIn($input: SignInEmailInput!) {
    signInEmail(input: $input) {
      user {
        ...UserFields
      }
    }
  }
`);

export const SignInSocial = graphql(`
  mutation SignInSocial($input: SignInSocialInput!) {
    signInSocial(input: $input) {
      url
      redirect
    }
  }
`);

export const SignOut = graphql(`
  mutation SignOut {
    signOut
  }
`);

export const Sessions = graphql(`
  query Sessions {
    sessions {
      id
      createdAt
      updatedAt
      expiresAt
      ipAddress
      userAgent
      current
    }
  }
`);

export const RevokeSession = graphql(`
  mutation RevokeSession($id: ID!) {
    revokeSession(id: $id)
  }
`);

export const RevokeOtherSessions = graphql(`
  mutation RevokeOtherSessions {
    revokeOtherSessions
  }
`);

export const ChangePassword = graphql(`
  mutation ChangePassword($input: ChangePasswordInput!) {
    changePassword(input: $input) {
      user {
        id
      }
    }
  }
`);

export const RequestPasswordReset = graphql(`
  mutation RequestPasswordReset($input: RequestPasswordResetInput!) {
    requestPasswordReset(input: $input)
  }
`);

export const ResetPassword = graphql(`
  mutation ResetPassword($input: ResetPasswordInput!) {
    resetPassword(input: $input)
  }
`);

export const VerifyEmail = graphql(`
  mutation VerifyEmail($token: String!) {
    verifyEmail(token: $token) {
      ...UserFields
    }
  }
`);

export const PasskeyFields = graphql(`
  fragment PasskeyFields on Passkey {
    id
    name
    createdAt
    lastUsedAt
    deviceType
    backedUp
  }
`);

export const Passkeys = graphql(`
  query Passkeys {
    passkeys {
      ...PasskeyFields
    }
  }
`);

export const PasskeyRegistrationOptions = graphql(`
  mutation PasskeyRegistrationOptions {
    passkeyRegistrationOptions(input: {})
  }
`);

export const RegisterPasskey = graphql(`
  mutation RegisterPasskey($input: RegisterPasskeyInput!) {
    registerPasskey(input: $input) {
      ...PasskeyFields
    }
  }
`);

export const RenamePasskey = graphql(`
  mutation RenamePasskey($input: RenamePasskeyInput!) {
    renamePasskey(input: $input) {
      ...PasskeyFields
    }
  }
`);

export const DeletePasskey = graphql(`
  mutation DeletePasskey($id: ID!) {
    deletePasskey(id: $id)
  }
`);

export const PasskeyAuthenticationOptions = graphql(`
  mutation PasskeyAuthenticationOptions($input: PasskeyAuthenticationOptionsInput) {
    passkeyAuthenticationOptions(input: $input)
  }
`);

export const SignInPasskey = graphql(`
  mutation SignInPasskey($input: SignInPasskeyInput!) {
    signInPasskey(input: $input) {
      user {
        ...UserFields
      }
    }
  }
`);
