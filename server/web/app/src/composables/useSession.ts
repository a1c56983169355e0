import { reactive } from "vue";
import { ApiError, getJson, request, sendJson, setCsrf } from "../api/client";
import type { Actor } from "../api/types";

interface WebSession {
  csrf: string;
  serverUrl: string;
  mapTileUrl?: string;
}

interface SessionState {
  user: (Actor & { email: string; verbs?: string[] }) | null;
  serverUrl: string;
  mapTileUrl: string;
  loaded: boolean;
}

const state = reactive<SessionState>({ user: null, serverUrl: "", mapTileUrl: "", loaded: false });

async function loadUser(session: WebSession): Promise<void> {
  setCsrf(session.csrf);
  state.serverUrl = session.serverUrl;
  state.mapTileUrl = session.mapTileUrl ?? "";
  state.user = await getJson("/v1/users/current", { "X-Extended-Metadata": "true" });
}

// The session shared by every page: who is signed in, and the calls that change it.
export function useSession() {
  async function restore(): Promise<void> {
    if (state.loaded) return;
    try {
      await loadUser(await getJson<WebSession>("/v1/web/session"));
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) throw error;
      state.user = null;
    } finally {
      state.loaded = true;
    }
  }

  async function signIn(email: string, password: string): Promise<void> {
    await loadUser(await sendJson<WebSession>("POST", "/v1/web/session", { email, password }));
    state.loaded = true;
  }

  async function signOut(): Promise<void> {
    try {
      await request("/v1/web/session", { method: "DELETE" });
    } finally {
      state.user = null;
      setCsrf("");
    }
  }

  const isAdmin = (): boolean => (state.user?.verbs ?? []).includes("user.create");

  return { state, restore, signIn, signOut, isAdmin };
}
