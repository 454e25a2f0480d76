// Every GraphQL operation the example uses. `npm run codegen` reads this file and writes the
// typed documents into src/gql/ from ../../schema.graphql (committed, so builds work offline).
import { graphql } from "./gql";

export const UserFields = graphql(`
  fragment UserFields on User {
    id
    name
    email
    emailVerified
    twoFactorEnabled
    backupCodesRemaining
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
      twoFactorRequired
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

export const SendVerificationEmail = graphql(`
  mutation SendVerificationEmail($input: SendVerificationEmailInput!) {
    sendVerificationEmail(input: $input)
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
      twoFactorRequired
      user {
        ...UserFields
      }
    }
  }
`);

export const SignInMagicLink = graphql(`
  mutation SignInMagicLink($input: SignInMagicLinkInput!) {
    signInMagicLink(input: $input)
  }
`);

export const SendSignInOtp = graphql(`
  mutation SendSignInOtp($input: SendSignInOtpInput!) {
    sendSignInOtp(input: $input)
  }
`);

export const SignInEmailOtp = graphql(`
  mutation SignInEmailOtp($input: SignInEmailOtpInput!) {
    signInEmailOtp(input: $input) {
      twoFactorRequired
      user {
        ...UserFields
      }
    }
  }
`);

export const EnableTwoFactor = graphql(`
  mutation EnableTwoFactor($input: EnableTwoFactorInput!) {
    enableTwoFactor(input: $input) {
      totpURI
      backupCodes
    }
  }
`);

// Both enrolment (signed in, no token) and the sign-in's second step (the `apexkit.two_factor`
// cookie, so no token either): the service tells them apart.
export const VerifyTotp = graphql(`
  mutation VerifyTotp($input: VerifyTotpInput!) {
    verifyTotp(input: $input) {
      user {
        ...UserFields
      }
    }
  }
`);

export const VerifyBackupCode = graphql(`
  mutation VerifyBackupCode($input: VerifyBackupCodeInput!) {
    verifyBackupCode(input: $input) {
      user {
        ...UserFields
      }
    }
  }
`);

export const GenerateBackupCodes = graphql(`
  mutation GenerateBackupCodes($input: GenerateBackupCodesInput!) {
    generateBackupCodes(input: $input)
  }
`);

export const DisableTwoFactor = graphql(`
  mutation DisableTwoFactor($input: DisableTwoFactorInput!) {
    disableTwoFactor(input: $input)
  }
`);
