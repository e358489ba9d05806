import { ApiException } from '@kubernetes/client-node';

/** Resolves with the ApiException a call rejects with, failing the test if it succeeds. */
export async function apiError(call: Promise<unknown>): Promise<ApiException<unknown>> {
  try {
    await call;
  } catch (error) {
    if (error instanceof ApiException) return error;
    throw error;
  }
  throw new Error('expected the API server to refuse the call');
}
