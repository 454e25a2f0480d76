/* eslint-disable */
import * as types from './graphql';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  fragment UserFields on User {\n    id\n    name\n    email\n    emailVerified\n    twoFactorEnabled\n    backupCodesRemaining\n  }\n": typeof types.UserFieldsFragmentDoc,
    "\n  query Me {\n    me {\n      ...UserFields\n    }\n  }\n": typeof types.MeDocument,
    "\n  query SocialProviders {\n    socialProviders {\n      id\n      name\n    }\n  }\n": typeof types.SocialProvidersDocument,
    "\n  mutation SignUp($input: SignUpEmailInput!) {\n    signUpEmail(input: $input) {\n      user {\n        ...UserFields\n      }\n      session {\n        id\n      }\n    }\n  }\n": typeof types.SignUpDocument,
    "\n  mutation SignIn($input: SignInEmailInput!) {\n    signInEmail(input: $input) {\n      twoFactorRequired\n      user {\n        ...UserFields\n      }\n    }\n  }\n": typeof types.SignInDocument,
    "\n  mutation SignInSocial($input: SignInSocialInput!) {\n    signInSocial(input: $input) {\n      url\n      redirect\n    }\n  }\n": typeof types.SignInSocialDocument,
    "\n  mutation SignOut {\n    signOut\n  }\n": typeof types.SignOutDocument,
    "\n  query Sessions {\n    sessions {\n      id\n      createdAt\n      updatedAt\n      expiresAt\n      ipAddress\n      userAgent\n      current\n    }\n  }\n": typeof types.SessionsDocument,
    "\n  mutation RevokeSession($id: ID!) {\n    revokeSession(id: $id)\n  }\n": typeof types.RevokeSessionDocument,
    "\n  mutation RevokeOtherSessions {\n    revokeOtherSessions\n  }\n": typeof types.RevokeOtherSessionsDocument,
    "\n  mutation ChangePassword($input: ChangePasswordInput!) {\n    changePassword(input: $input) {\n      user {\n        id\n      }\n    }\n  }\n": typeof types.ChangePasswordDocument,
    "\n  mutation RequestPasswordReset($input: RequestPasswordResetInput!) {\n    requestPasswordReset(input: $input)\n  }\n": typeof types.RequestPasswordResetDocument,
    "\n  mutation ResetPassword($input: ResetPasswordInput!) {\n    resetPassword(input: $input)\n  }\n": typeof types.ResetPasswordDocument,
    "\n  mutation SendVerificationEmail($input: SendVerificationEmailInput!) {\n    sendVerificationEmail(input: $input)\n  }\n": typeof types.SendVerificationEmailDocument,
    "\n  mutation VerifyEmail($token: String!) {\n    verifyEmail(token: $token) {\n      ...UserFields\n    }\n  }\n": typeof types.VerifyEmailDocument,
    "\n  fragment PasskeyFields on Passkey {\n    id\n    name\n    createdAt\n    lastUsedAt\n    deviceType\n    backedUp\n  }\n": typeof types.PasskeyFieldsFragmentDoc,
    "\n  query Passkeys {\n    passkeys {\n      ...PasskeyFields\n    }\n  }\n": typeof types.PasskeysDocument,
    "\n  mutation PasskeyRegistrationOptions {\n    passkeyRegistrationOptions(input: {})\n  }\n": typeof types.PasskeyRegistrationOptionsDocument,
    "\n  mutation RegisterPasskey($input: RegisterPasskeyInput!) {\n    registerPasskey(input: $input) {\n      ...PasskeyFields\n    }\n  }\n": typeof types.RegisterPasskeyDocument,
    "\n  mutation RenamePasskey($input: RenamePasskeyInput!) {\n    renamePasskey(input: $input) {\n      ...PasskeyFields\n    }\n  }\n": typeof types.RenamePasskeyDocument,
    "\n  mutation DeletePasskey($id: ID!) {\n    deletePasskey(id: $id)\n  }\n": typeof types.DeletePasskeyDocument,
    "\n  mutation PasskeyAuthenticationOptions($input: PasskeyAuthenticationOptionsInput) {\n    passkeyAuthenticationOptions(input: $input)\n  }\n": typeof types.PasskeyAuthenticationOptionsDocument,
    "\n  mutation SignInPasskey($input: SignInPasskeyInput!) {\n    signInPasskey(input: $input) {\n      twoFactorRequired\n      user {\n        ...UserFields\n      }\n    }\n  }\n": typeof types.SignInPasskeyDocument,
    "\n  mutation SignInMagicLink($input: SignInMagicLinkInput!) {\n    signInMagicLink(input: $input)\n  }\n": typeof types.SignInMagicLinkDocument,
    "\n  mutation SendSignInOtp($input: SendSignInOtpInput!) {\n    sendSignInOtp(input: $input)\n  }\n": typeof types.SendSignInOtpDocument,
    "\n  mutation SignInEmailOtp($input: SignInEmailOtpInput!) {\n    signInEmailOtp(input: $input) {\n      twoFactorRequired\n      user {\n        ...UserFields\n      }\n    }\n  }\n": typeof types.SignInEmailOtpDocument,
    "\n  mutation EnableTwoFactor($input: EnableTwoFactorInput!) {\n    enableTwoFactor(input: $input) {\n      totpURI\n      backupCodes\n    }\n  }\n": typeof types.EnableTwoFactorDocument,
    "\n  mutation VerifyTotp($input: VerifyTotpInput!) {\n    verifyTotp(input: $input) {\n      user {\n        ...UserFields\n      }\n    }\n  }\n": typeof types.VerifyTotpDocument,
    "\n  mutation VerifyBackupCode($input: VerifyBackupCodeInput!) {\n    verifyBackupCode(input: $input) {\n      user {\n        ...UserFields\n      }\n    }\n  }\n": typeof types.VerifyBackupCodeDocument,
    "\n  mutation GenerateBackupCodes($input: GenerateBackupCodesInput!) {\n    generateBackupCodes(input: $input)\n  }\n": typeof types.GenerateBackupCodesDocument,
    "\n  mutation DisableTwoFactor($input: DisableTwoFactorInput!) {\n    disableTwoFactor(input: $input)\n  }\n": typeof types.DisableTwoFactorDocument,
};
const documents: Documents = {
    "\n  fragment UserFields on User {\n    id\n    name\n    email\n    emailVerified\n    twoFactorEnabled\n    backupCodesRemaining\n  }\n": types.UserFieldsFragmentDoc,
    "\n  query Me {\n    me {\n      ...UserFields\n    }\n  }\n": types.MeDocument,
    "\n  query SocialProviders {\n    socialProviders {\n      id\n      name\n    }\n  }\n": types.SocialProvidersDocument,
    "\n  mutation SignUp($input: SignUpEmailInput!) {\n    signUpEmail(input: $input) {\n      user {\n        ...UserFields\n      }\n      session {\n        id\n      }\n    }\n  }\n": types.SignUpDocument,
    "\n  mutation SignIn($input: SignInEmailInput!) {\n    signInEmail(input: $input) {\n      twoFactorRequired\n      user {\n        ...UserFields\n      }\n    }\n  }\n": types.SignInDocument,
    "\n  mutation SignInSocial($input: SignInSocialInput!) {\n    signInSocial(input: $input) {\n      url\n      redirect\n    }\n  }\n": types.SignInSocialDocument,
    "\n  mutation SignOut {\n    signOut\n  }\n": types.SignOutDocument,
    "\n  query Sessions {\n    sessions {\n      id\n      createdAt\n      updatedAt\n      expiresAt\n      ipAddress\n      userAgent\n      current\n    }\n  }\n": types.SessionsDocument,
    "\n  mutation RevokeSession($id: ID!) {\n    revokeSession(id: $id)\n  }\n": types.RevokeSessionDocument,
    "\n  mutation RevokeOtherSessions {\n    revokeOtherSessions\n  }\n": types.RevokeOtherSessionsDocument,
    "\n  mutation ChangePassword($input: ChangePasswordInput!) {\n    changePassword(input: $input) {\n      user {\n        id\n      }\n    }\n  }\n": types.ChangePasswordDocument,
    "\n  mutation RequestPasswordReset($input: RequestPasswordResetInput!) {\n    requestPasswordReset(input: $input)\n  }\n": types.RequestPasswordResetDocument,
    "\n  mutation ResetPassword($input: ResetPasswordInput!) {\n    resetPassword(input: $input)\n  }\n": types.ResetPasswordDocument,
    "\n  mutation SendVerificationEmail($input: SendVerificationEmailInput!) {\n    sendVerificationEmail(input: $input)\n  }\n": types.SendVerificationEmailDocument,
    "\n  mutation VerifyEmail($token: String!) {\n    verifyEmail(token: $token) {\n      ...UserFields\n    }\n  }\n": types.VerifyEmailDocument,
    "\n  fragment PasskeyFields on Passkey {\n    id\n    name\n    createdAt\n    lastUsedAt\n    deviceType\n    backedUp\n  }\n": types.PasskeyFieldsFragmentDoc,
    "\n  query Passkeys {\n    passkeys {\n      ...PasskeyFields\n    }\n  }\n": types.PasskeysDocument,
    "\n  mutation PasskeyRegistrationOptions {\n    passkeyRegistrationOptions(input: {})\n  }\n": types.PasskeyRegistrationOptionsDocument,
    "\n  mutation RegisterPasskey($input: RegisterPasskeyInput!) {\n    registerPasskey(input: $input) {\n      ...PasskeyFields\n    }\n  }\n": types.RegisterPasskeyDocument,
    "\n  mutation RenamePasskey($input: RenamePasskeyInput!) {\n    renamePasskey(input: $input) {\n      ...PasskeyFields\n    }\n  }\n": types.RenamePasskeyDocument,
    "\n  mutation DeletePasskey($id: ID!) {\n    deletePasskey(id: $id)\n  }\n": types.DeletePasskeyDocument,
    "\n  mutation PasskeyAuthenticationOptions($input: PasskeyAuthenticationOptionsInput) {\n    passkeyAuthenticationOptions(input: $input)\n  }\n": types.PasskeyAuthenticationOptionsDocument,
    "\n  mutation SignInPasskey($input: SignInPasskeyInput!) {\n    signInPasskey(input: $input) {\n      twoFactorRequired\n      user {\n        ...UserFields\n      }\n    }\n  }\n": types.SignInPasskeyDocument,
    "\n  mutation SignInMagicLink($input: SignInMagicLinkInput!) {\n    signInMagicLink(input: $input)\n  }\n": types.SignInMagicLinkDocument,
    "\n  mutation SendSignInOtp($input: SendSignInOtpInput!) {\n    sendSignInOtp(input: $input)\n  }\n": types.SendSignInOtpDocument,
    "\n  mutation SignInEmailOtp($input: SignInEmailOtpInput!) {\n    signInEmailOtp(input: $input) {\n      twoFactorRequired\n      user {\n        ...UserFields\n      }\n    }\n  }\n": types.SignInEmailOtpDocument,
    "\n  mutation EnableTwoFactor($input: EnableTwoFactorInput!) {\n    enableTwoFactor(input: $input) {\n      totpURI\n      backupCodes\n    }\n  }\n": types.EnableTwoFactorDocument,
    "\n  mutation VerifyTotp($input: VerifyTotpInput!) {\n    verifyTotp(input: $input) {\n      user {\n        ...UserFields\n      }\n    }\n  }\n": types.VerifyTotpDocument,
    "\n  mutation VerifyBackupCode($input: VerifyBackupCodeInput!) {\n    verifyBackupCode(input: $input) {\n      user {\n        ...UserFields\n      }\n    }\n  }\n": types.VerifyBackupCodeDocument,
    "\n  mutation GenerateBackupCodes($input: GenerateBackupCodesInput!) {\n    generateBackupCodes(input: $input)\n  }\n": types.GenerateBackupCodesDocument,
    "\n  mutation DisableTwoFactor($input: DisableTwoFactorInput!) {\n    disableTwoFactor(input: $input)\n  }\n": types.DisableTwoFactorDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment UserFields on User {\n    id\n    name\n    email\n    emailVerified\n    twoFactorEnabled\n    backupCodesRemaining\n  }\n"): (typeof documents)["\n  fragment UserFields on User {\n    id\n    name\n    email\n    emailVerified\n    twoFactorEnabled\n    backupCodesRemaining\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Me {\n    me {\n      ...UserFields\n    }\n  }\n"): (typeof documents)["\n  query Me {\n    me {\n      ...UserFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query SocialProviders {\n    socialProviders {\n      id\n      name\n    }\n  }\n"): (typeof documents)["\n  query SocialProviders {\n    socialProviders {\n      id\n      name\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SignUp($input: SignUpEmailInput!) {\n    signUpEmail(input: $input) {\n      user {\n        ...UserFields\n      }\n      session {\n        id\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation SignUp($input: SignUpEmailInput!) {\n    signUpEmail(input: $input) {\n      user {\n        ...UserFields\n      }\n      session {\n        id\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SignIn($input: SignInEmailInput!) {\n    signInEmail(input: $input) {\n      twoFactorRequired\n      user {\n        ...UserFields\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation SignIn($input: SignInEmailInput!) {\n    signInEmail(input: $input) {\n      twoFactorRequired\n      user {\n        ...UserFields\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SignInSocial($input: SignInSocialInput!) {\n    signInSocial(input: $input) {\n      url\n      redirect\n    }\n  }\n"): (typeof documents)["\n  mutation SignInSocial($input: SignInSocialInput!) {\n    signInSocial(input: $input) {\n      url\n      redirect\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SignOut {\n    signOut\n  }\n"): (typeof documents)["\n  mutation SignOut {\n    signOut\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Sessions {\n    sessions {\n      id\n      createdAt\n      updatedAt\n      expiresAt\n      ipAddress\n      userAgent\n      current\n    }\n  }\n"): (typeof documents)["\n  query Sessions {\n    sessions {\n      id\n      createdAt\n      updatedAt\n      expiresAt\n      ipAddress\n      userAgent\n      current\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RevokeSession($id: ID!) {\n    revokeSession(id: $id)\n  }\n"): (typeof documents)["\n  mutation RevokeSession($id: ID!) {\n    revokeSession(id: $id)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RevokeOtherSessions {\n    revokeOtherSessions\n  }\n"): (typeof documents)["\n  mutation RevokeOtherSessions {\n    revokeOtherSessions\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation ChangePassword($input: ChangePasswordInput!) {\n    changePassword(input: $input) {\n      user {\n        id\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation ChangePassword($input: ChangePasswordInput!) {\n    changePassword(input: $input) {\n      user {\n        id\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RequestPasswordReset($input: RequestPasswordResetInput!) {\n    requestPasswordReset(input: $input)\n  }\n"): (typeof documents)["\n  mutation RequestPasswordReset($input: RequestPasswordResetInput!) {\n    requestPasswordReset(input: $input)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation ResetPassword($input: ResetPasswordInput!) {\n    resetPassword(input: $input)\n  }\n"): (typeof documents)["\n  mutation ResetPassword($input: ResetPasswordInput!) {\n    resetPassword(input: $input)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SendVerificationEmail($input: SendVerificationEmailInput!) {\n    sendVerificationEmail(input: $input)\n  }\n"): (typeof documents)["\n  mutation SendVerificationEmail($input: SendVerificationEmailInput!) {\n    sendVerificationEmail(input: $input)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation VerifyEmail($token: String!) {\n    verifyEmail(token: $token) {\n      ...UserFields\n    }\n  }\n"): (typeof documents)["\n  mutation VerifyEmail($token: String!) {\n    verifyEmail(token: $token) {\n      ...UserFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment PasskeyFields on Passkey {\n    id\n    name\n    createdAt\n    lastUsedAt\n    deviceType\n    backedUp\n  }\n"): (typeof documents)["\n  fragment PasskeyFields on Passkey {\n    id\n    name\n    createdAt\n    lastUsedAt\n    deviceType\n    backedUp\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Passkeys {\n    passkeys {\n      ...PasskeyFields\n    }\n  }\n"): (typeof documents)["\n  query Passkeys {\n    passkeys {\n      ...PasskeyFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation PasskeyRegistrationOptions {\n    passkeyRegistrationOptions(input: {})\n  }\n"): (typeof documents)["\n  mutation PasskeyRegistrationOptions {\n    passkeyRegistrationOptions(input: {})\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RegisterPasskey($input: RegisterPasskeyInput!) {\n    registerPasskey(input: $input) {\n      ...PasskeyFields\n    }\n  }\n"): (typeof documents)["\n  mutation RegisterPasskey($input: RegisterPasskeyInput!) {\n    registerPasskey(input: $input) {\n      ...PasskeyFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RenamePasskey($input: RenamePasskeyInput!) {\n    renamePasskey(input: $input) {\n      ...PasskeyFields\n    }\n  }\n"): (typeof documents)["\n  mutation RenamePasskey($input: RenamePasskeyInput!) {\n    renamePasskey(input: $input) {\n      ...PasskeyFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation DeletePasskey($id: ID!) {\n    deletePasskey(id: $id)\n  }\n"): (typeof documents)["\n  mutation DeletePasskey($id: ID!) {\n    deletePasskey(id: $id)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation PasskeyAuthenticationOptions($input: PasskeyAuthenticationOptionsInput) {\n    passkeyAuthenticationOptions(input: $input)\n  }\n"): (typeof documents)["\n  mutation PasskeyAuthenticationOptions($input: PasskeyAuthenticationOptionsInput) {\n    passkeyAuthenticationOptions(input: $input)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SignInPasskey($input: SignInPasskeyInput!) {\n    signInPasskey(input: $input) {\n      twoFactorRequired\n      user {\n        ...UserFields\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation SignInPasskey($input: SignInPasskeyInput!) {\n    signInPasskey(input: $input) {\n      twoFactorRequired\n      user {\n        ...UserFields\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SignInMagicLink($input: SignInMagicLinkInput!) {\n    signInMagicLink(input: $input)\n  }\n"): (typeof documents)["\n  mutation SignInMagicLink($input: SignInMagicLinkInput!) {\n    signInMagicLink(input: $input)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SendSignInOtp($input: SendSignInOtpInput!) {\n    sendSignInOtp(input: $input)\n  }\n"): (typeof documents)["\n  mutation SendSignInOtp($input: SendSignInOtpInput!) {\n    sendSignInOtp(input: $input)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SignInEmailOtp($input: SignInEmailOtpInput!) {\n    signInEmailOtp(input: $input) {\n      twoFactorRequired\n      user {\n        ...UserFields\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation SignInEmailOtp($input: SignInEmailOtpInput!) {\n    signInEmailOtp(input: $input) {\n      twoFactorRequired\n      user {\n        ...UserFields\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation EnableTwoFactor($input: EnableTwoFactorInput!) {\n    enableTwoFactor(input: $input) {\n      totpURI\n      backupCodes\n    }\n  }\n"): (typeof documents)["\n  mutation EnableTwoFactor($input: EnableTwoFactorInput!) {\n    enableTwoFactor(input: $input) {\n      totpURI\n      backupCodes\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation VerifyTotp($input: VerifyTotpInput!) {\n    verifyTotp(input: $input) {\n      user {\n        ...UserFields\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation VerifyTotp($input: VerifyTotpInput!) {\n    verifyTotp(input: $input) {\n      user {\n        ...UserFields\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation VerifyBackupCode($input: VerifyBackupCodeInput!) {\n    verifyBackupCode(input: $input) {\n      user {\n        ...UserFields\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation VerifyBackupCode($input: VerifyBackupCodeInput!) {\n    verifyBackupCode(input: $input) {\n      user {\n        ...UserFields\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation GenerateBackupCodes($input: GenerateBackupCodesInput!) {\n    generateBackupCodes(input: $input)\n  }\n"): (typeof documents)["\n  mutation GenerateBackupCodes($input: GenerateBackupCodesInput!) {\n    generateBackupCodes(input: $input)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation DisableTwoFactor($input: DisableTwoFactorInput!) {\n    disableTwoFactor(input: $input)\n  }\n"): (typeof documents)["\n  mutation DisableTwoFactor($input: DisableTwoFactorInput!) {\n    disableTwoFactor(input: $input)\n  }\n"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;