import { ref, type Ref } from "vue";
import { ApiError } from "../api/client";

// One API read for a view: its data, whether it is loading, and the error it met.
export function useResource<T>(load: () => Promise<T>) {
  const data = ref<T | null>(null) as Ref<T | null>;
  const error = ref<ApiError | null>(null);
  const loading = ref(false);

  async function refresh(): Promise<void> {
    loading.value = true;
    error.value = null;
    try {
      data.value = await load();
    } catch (caught) {
      error.value =
        caught instanceof ApiError ? caught : new ApiError(0, null, String(caught), null);
    } finally {
      loading.value = false;
    }
  }

  return { data, error, loading, refresh };
}
