/* podshim's pause process: PID 1 of the pod's infra container.
 *
 * It holds the pod's namespaces open for as long as the pod lives, exits 0 on
 * SIGTERM/SIGINT (the stop signals podshim sends), and reaps zombies so that a pod
 * with shareProcessNamespace does not accumulate them (it is then PID 1 of the shared
 * PID namespace, the role the kubelet's pause container plays).
 * Built statically by build.rs so it runs in an empty rootfs. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) { (void)sig; _exit(0); }

static void on_child(int sig) {
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        write(1, "podshim-pause\n", 14);
        return 0;
    }
    struct sigaction stop = {0}, child = {0};
    stop.sa_handler = on_stop;
    child.sa_handler = on_child;
    child.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    if (sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGTERM, &stop, NULL) < 0 ||
        sigaction(SIGCHLD, &child, NULL) < 0)
        return 1;
    /* A mask inherited through the runtime would hold the stop signals back
     * forever (as PID 1, nothing but SIGKILL reaches it then). */
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
        return 1;
    if (getpid() != 1)
        write(2, "podshim-pause: not PID 1, zombies are someone else's\n", 53);
    for (;;)
        pause();
}
