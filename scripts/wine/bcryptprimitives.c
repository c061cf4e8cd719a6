/* Wine 8.0 (Debian 12) lacks bcryptprimitives.dll, which every Go >= 1.22
 * Windows binary loads at start for ProcessPrng. This one-function DLL,
 * placed in the Wine prefix's system32, provides it over BCryptGenRandom. */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE p, SIZE_T n) {
  while (n) {
    ULONG k = n > 0x10000000 ? 0x10000000 : (ULONG)n;
    if (BCryptGenRandom(NULL, p, k, BCRYPT_USE_SYSTEM_PREFERRED_RNG)) return FALSE;
    p += k;
    n -= k;
  }
  return TRUE;
}
